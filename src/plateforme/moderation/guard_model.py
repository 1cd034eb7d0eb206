"""A guard model the operator runs: a remote OpenAI-compatible server, mapped to the 2603 categories.

    guard = GuardModelProvider("guard", "http://guard:8000/v1", "meta-llama/Llama-Guard-3-1B")

Two protocols (`api`):
- `"chat"` (the default): `POST {base_url}/chat/completions` with the conversation, as a guard
  served by vLLM expects (Llama Guard's chat template turns it into its prompt). The answer is
  Llama Guard's `safe`, or `unsafe` and a line of its codes (`S1,S10`): each code's categories
  (`category_map`) score 1.0, the others 0.0. A guard that answers a JSON object of scores
  (`{"violence": 0.9, ...}`, or `{"category_scores": {...}}`) is read the same way through the map.
- `"moderations"`: `POST {base_url}/moderations` with `{"model", "input": [texts]}`, as OpenAI's,
  Mistral's or another plateforme's moderation endpoint answers: `results[i].category_scores`
  (one request for all the inputs; the judged texts only, without their conversations).

Where several of the guard's categories map to one of ours, the largest score wins. The server
down, a timeout, an error status or an answer in none of these shapes: ModerationProviderError.
"""

import asyncio

import httpx

from plateforme.moderation.categories import CATEGORIES_2603
from plateforme.moderation.guard_verdicts import (
    LLAMA_GUARD_3_MAP, NAMED_MAPS, OPENAI_MODERATION_MAP, UnreadableVerdict, guard_messages, read_chat_verdict,
    read_moderation_results)
from plateforme.moderation.provider import ModerationInput, ModerationProviderError, ProviderScores
from plateforme.tenancy.principal import Principal


def _normalized_map(name: str, category_map: dict | str) -> dict[str, tuple[str, ...]]:
    if isinstance(category_map, str):
        if category_map not in NAMED_MAPS:
            raise ValueError(f"guard {name!r}: no category map is named {category_map!r}; the named maps are "
                             f"{', '.join(NAMED_MAPS)}, or write one ({{their category: one of ours or a list}})")
        category_map = NAMED_MAPS[category_map]
    normalized = {}
    for theirs, ours in category_map.items():
        ours = (ours,) if isinstance(ours, str) else tuple(ours)
        unknown = [c for c in ours if c not in CATEGORIES_2603]
        if unknown:
            raise ValueError(f"guard {name!r}: category_map[{theirs!r}] names {', '.join(unknown)}, which are "
                             f"not categories of mistral-moderation-2603 ({', '.join(CATEGORIES_2603)})")
        normalized[str(theirs).strip().lower()] = ours
    return normalized


class GuardModelProvider:
    def __init__(self, name: str, base_url: str, model: str, api_key: str | None = None,
                 category_map: dict | str | None = None, timeout_s: float = 10.0, *, api: str = "chat",
                 categories=None, max_concurrency: int = 8):
        """`category_map`: {their category or code: one of ours or a list of ours}, or the name of
        one in guard_verdicts.NAMED_MAPS ("llama_guard_3", "qwen3_guard", "openai_moderation"...)
        (default: Llama Guard 3's codes for `api="chat"`, OpenAI's and Mistral's for "moderations");
        `categories`: only these of ours are scored (default: every one the map reaches)."""
        if api not in ("chat", "moderations"):
            raise ValueError(f"guard {name!r}: api must be 'chat' or 'moderations', not {api!r}")
        if category_map is None:
            category_map = LLAMA_GUARD_3_MAP if api == "chat" else OPENAI_MODERATION_MAP
        self.name, self.model, self.api = name, model, api
        self.base_url = base_url.rstrip("/")
        self.category_map = _normalized_map(name, category_map)
        if not self.category_map:
            raise ValueError(f"guard {name!r}: category_map is empty: map the guard's categories to ours")
        reached = frozenset(c for ours in self.category_map.values() for c in ours)
        self.categories = reached if categories is None else reached & frozenset(categories)
        if not self.categories:
            raise ValueError(f"guard {name!r}: none of the categories {sorted(categories or ())} is reached by "
                             f"its category_map (it reaches {', '.join(sorted(reached))})")
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout_s,
                                       limits=httpx.Limits(max_connections=max_concurrency))
        self._slots = asyncio.Semaphore(max_concurrency)

    async def close(self) -> None:
        await self._http.aclose()

    aclose = close

    def _fail(self, reason: str, cause: Exception | None = None) -> ModerationProviderError:
        error = ModerationProviderError(self.name, f"guard model {self.model!r} at {self.base_url}: {reason}")
        error.__cause__ = cause
        return error

    async def _post(self, path: str, body: dict) -> dict:
        try:
            async with self._slots:
                response = await self._http.post(path, json=body)
        except httpx.TimeoutException as exc:
            raise self._fail(f"no answer within {self.timeout_s:g} s (timeout_s); is the guard overloaded?",
                             exc) from exc
        except httpx.HTTPError as exc:
            raise self._fail(f"cannot reach the server ({exc!r}); check that it runs and that base_url "
                             "is its OpenAI-compatible base URL (ending in /v1)", exc) from exc
        if response.status_code != 200:
            hint = (f"; is base_url its OpenAI-compatible base URL (ending in /v1), and does it serve {path}?"
                    if response.status_code in (404, 405) else "")
            raise self._fail(f"POST {path} answered {response.status_code}: {response.text[:300]}{hint}")
        try:
            answer = response.json()
        except ValueError as exc:
            raise self._fail(f"POST {path} answered something that is not JSON: {response.text[:300]!r}",
                             exc) from exc
        if not isinstance(answer, dict):
            raise self._fail(f"POST {path} answered {type(answer).__name__}, not a JSON object")
        return answer

    def _scores(self, theirs: dict[str, float]) -> dict[str, float]:
        ours = dict.fromkeys(sorted(self.categories), 0.0)
        for category, score in theirs.items():
            for mapped in self.category_map.get(category.strip().lower(), ()):
                if mapped in ours:
                    ours[mapped] = max(ours[mapped], score)
        return ours

    async def _chat(self, item: ModerationInput) -> tuple[dict[str, float], int]:
        body = {"model": self.model, "messages": guard_messages(item), "temperature": 0, "max_tokens": 64}
        answer = await self._post("/chat/completions", body)
        try:
            content = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise self._fail(f"the chat answer has no choices[0].message.content: {str(answer)[:300]}",
                             exc) from exc
        try:
            theirs = read_chat_verdict(content)
        except UnreadableVerdict as exc:
            raise self._fail(str(exc), exc) from exc
        return self._scores(theirs), _prompt_tokens(answer)

    async def _moderations(self, items: list[ModerationInput]) -> ProviderScores:
        answer = await self._post("/moderations", {"model": self.model, "input": [i.text for i in items]})
        try:
            results = read_moderation_results(answer, len(items))
        except UnreadableVerdict as exc:
            raise self._fail(str(exc), exc) from exc
        return ProviderScores([self._scores(r) for r in results], _prompt_tokens(answer))

    async def score(self, who: Principal, items: list[ModerationInput]) -> ProviderScores:
        if not items:
            return ProviderScores([], 0)
        if self.api == "moderations":
            return await self._moderations(items)
        judged = await asyncio.gather(*(self._chat(item) for item in items))
        return ProviderScores([scores for scores, _ in judged], sum(tokens for _, tokens in judged))


def _prompt_tokens(answer: dict) -> int:
    usage = answer.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0 else 0
