"""What guard models answer, read as {their category: score}, and their default category maps.

- Llama Guard 3 and 4 (`safe`, or `unsafe` then `S1,S10`): the codes of MLCommons' hazard taxonomy.
- Qwen3Guard (`Safety: Unsafe` then `Categories: Violent, PII`): its category names;
  `Controversial` scores 0.5.
- A JSON object of scores, `{"violence": 0.92, ...}` or `{"category_scores": {...}}` (numbers in
  [0, 1] or booleans).
- A moderation endpoint (OpenAI's, Mistral's, another plateforme's): `results[i].category_scores`.
"""

import json
import re

from plateforme.moderation.categories import CATEGORIES_2603
from plateforme.moderation.provider import ModerationInput

# Llama Guard 3/4's codes. S6 (specialized advice) does not say which kind: all three advice
# categories; S5 (defamation), S8 (intellectual property) and S13 (elections) have none of ours.
LLAMA_GUARD_3_MAP = {
    "S1": ("violence_and_threats", "criminal"), "S2": ("criminal",), "S3": ("sexual", "criminal"),
    "S4": ("sexual", "criminal"), "S6": ("health", "financial", "law"), "S7": ("pii",),
    "S9": ("dangerous",), "S10": ("hate_and_discrimination",), "S11": ("selfharm",), "S12": ("sexual",),
    "S14": ("jailbreaking",),
}

QWEN3_GUARD_MAP = {
    "Violent": ("violence_and_threats",), "Non-violent Illegal Acts": ("criminal",),
    "Sexual Content or Sexual Acts": ("sexual",), "PII": ("pii",), "Suicide & Self-Harm": ("selfharm",),
    "Unethical Acts": ("criminal",), "Jailbreak": ("jailbreaking",),
}

# OpenAI's moderation categories, and Mistral's own (2411 and 2603) for a Mistral-shaped endpoint.
OPENAI_MODERATION_MAP = {
    "sexual": ("sexual",), "sexual/minors": ("sexual", "criminal"), "harassment": ("hate_and_discrimination",),
    "harassment/threatening": ("violence_and_threats",), "hate": ("hate_and_discrimination",),
    "hate/threatening": ("hate_and_discrimination", "violence_and_threats"), "illicit": ("criminal",),
    "illicit/violent": ("dangerous", "criminal"), "self-harm": ("selfharm",), "self-harm/intent": ("selfharm",),
    "self-harm/instructions": ("selfharm",), "violence": ("violence_and_threats",),
    "violence/graphic": ("violence_and_threats",),
    "dangerous_and_criminal_content": ("dangerous", "criminal"),
    **{c: (c,) for c in CATEGORIES_2603 if c != "sexual"},
}


# The maps an operator can name instead of writing one (`category_map: qwen3_guard`).
NAMED_MAPS = {"llama_guard_3": LLAMA_GUARD_3_MAP, "llama_guard_4": LLAMA_GUARD_3_MAP, "qwen3_guard": QWEN3_GUARD_MAP,
              "openai_moderation": OPENAI_MODERATION_MAP, "mistral_moderation": OPENAI_MODERATION_MAP}


class UnreadableVerdict(ValueError):
    """The guard's answer is in none of the shapes above."""


def _json_scores(scores: dict, where: str) -> dict[str, float]:
    read = {}
    for category, value in scores.items():
        if isinstance(value, bool):
            value = 1.0 if value else 0.0
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise UnreadableVerdict(f"{where}[{category!r}] is {value!r}, not a score from 0 to 1")
        read[str(category)] = float(value)
    return read


_QWEN_SAFETY = re.compile(r"Safety:\s*(Safe|Unsafe|Controversial)", re.IGNORECASE)
_QWEN_CATEGORIES = re.compile(r"Categories:\s*(.*)", re.IGNORECASE)


def read_chat_verdict(content: str | None) -> dict[str, float]:
    """A chat guard's answer as {their category: score}; UnreadableVerdict if it is none of the shapes."""
    text = (content or "").strip()
    if text.startswith("{"):
        try:
            answer = json.loads(text)
        except ValueError as exc:
            raise UnreadableVerdict(f"the answer looks like JSON but does not parse: {text[:200]!r}") from exc
        scores = answer.get("category_scores", answer) if isinstance(answer, dict) else None
        if not isinstance(scores, dict):
            raise UnreadableVerdict(f"the JSON answer is not an object of scores: {text[:200]!r}")
        return _json_scores(scores, "the answer")
    qwen = _QWEN_SAFETY.search(text)
    if qwen:
        found = _QWEN_CATEGORIES.search(text)
        named = [n.strip() for n in found.group(1).split(",")] if found else []
        score = {"safe": 0.0, "unsafe": 1.0, "controversial": 0.5}[qwen.group(1).lower()]
        return {n: score for n in named if n and n.lower() != "none"} if score else {}
    words = [w for w in re.split(r"[\s,]+", text) if w]
    if words and words[0].lower() == "safe":
        return {}
    if words and words[0].lower() == "unsafe":
        codes = [w.split(":")[0] for w in words[1:]]
        if not codes:
            raise UnreadableVerdict("the guard answered 'unsafe' without naming a category")
        return {code: 1.0 for code in codes}
    raise UnreadableVerdict(f"expected 'safe', 'unsafe' and categories, or JSON scores; got {text[:200]!r}")


def read_moderation_results(answer: dict, expected: int) -> list[dict[str, float]]:
    """`results[i].category_scores` of a moderation endpoint's answer, one per input."""
    results = answer.get("results")
    if not isinstance(results, list) or len(results) != expected:
        raise UnreadableVerdict(f"expected {expected} results, got {str(answer)[:300]}")
    read = []
    for i, result in enumerate(results):
        scores = result.get("category_scores") if isinstance(result, dict) else None
        if not isinstance(scores, dict):
            raise UnreadableVerdict(f"results[{i}] has no category_scores object")
        read.append(_json_scores(scores, f"results[{i}].category_scores"))
    return read


def guard_messages(item: ModerationInput) -> list[dict]:
    """The conversation as a guard's chat template takes it: user and assistant turns alternating,
    starting with the user's, ending with the judged turn (the user's, unless the turn before was)."""
    turns: list[dict] = []
    for turn in item.context:
        role, content = turn.get("role"), turn.get("content") or ""
        if role not in ("user", "assistant") or not content:
            continue  # system and tool turns are not the guard's to judge
        if turns and turns[-1]["role"] == role:
            turns[-1] = {"role": role, "content": turns[-1]["content"] + "\n\n" + content}
        elif turns or role == "user":
            turns.append({"role": role, "content": content})
    judged_role = "assistant" if turns and turns[-1]["role"] == "user" else "user"
    return [*turns, {"role": judged_role, "content": item.text}]
