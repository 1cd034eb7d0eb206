"""The moderation evaluation (benchmarks/bench_moderation.py): the held-out labelled set, and
precision, recall and F1 per category, false-positive rates, and their tables.

The set (benchmarks/data/moderation/, its README.md says how it was written): heldout_en.jsonl and
heldout_fr.jsonl (labelled lines of the eleven 2603 categories, and benign look-alikes) and
benign_business.jsonl (ordinary business questions, English and French, all benign), in Mistral's
classifier format `{"text", "labels": {"moderation": [categories]}}`.

A line counts as flagged for a category when the provider's answer flags it (the categories'
booleans of POST /v1/moderations: the server's default thresholds), so what is measured is what a
caller gets. A false positive on the benign sets is a benign line flagged for any category.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from plateforme.moderation.categories import CATEGORIES_2603

DATA = Path(__file__).parent / "data" / "moderation"
HELDOUT = {"en": "heldout_en.jsonl", "fr": "heldout_fr.jsonl"}
BUSINESS = "benign_business.jsonl"
TARGET_FPR = 0.02

_FRENCH = re.compile(r"\b(le|la|les|des|du|une|est|pour|comment|quel|quelle|quels|nos|notre|mon|ma|mes|je|que|qu|"
                     r"dans|avec|sur|moi|faire|où|un|d|l|lors|doit|propose)\b", re.IGNORECASE)
_ACCENTS = re.compile(r"[éèêàçùôîû«»]")
_ENGLISH = re.compile(r"\b(the|and|how|what|our|is|for|my|to|of|do|can|you|with|should|which)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Example:
    text: str
    labels: frozenset[str]     # empty: benign
    language: str              # en | fr
    source: str                # heldout | business


def language_of(text: str) -> str:
    """en or fr, for the business set's mixed lines: which language's function words (and, for
    French, accents) it has more of."""
    french = len(_FRENCH.findall(text)) + 2 * bool(_ACCENTS.search(text))
    return "fr" if french > len(_ENGLISH.findall(text)) else "en"


def _read(name: str) -> list[dict]:
    rows = []
    for n, line in enumerate((DATA / name).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        labels = row["labels"]["moderation"]
        unknown = [c for c in labels if c not in CATEGORIES_2603]
        if unknown or not row["text"].strip():
            raise ValueError(f"{name} line {n}: unknown categories {unknown} or an empty text")
        rows.append(row)
    return rows


def load_heldout() -> list[Example]:
    return [Example(r["text"], frozenset(r["labels"]["moderation"]), language, "heldout")
            for language, name in HELDOUT.items() for r in _read(name)]


def load_business() -> list[Example]:
    rows = _read(BUSINESS)
    if any(r["labels"]["moderation"] for r in rows):
        raise ValueError(f"{BUSINESS}: every line must be benign (an empty label list)")
    return [Example(r["text"], frozenset(), language_of(r["text"]), "business") for r in rows]


def sample(examples: list[Example], per_category: int, benign: int) -> list[Example]:
    """The first `per_category` lines of each category in each language, and the first `benign`
    benign lines of each language and source (a small set for a slow provider)."""
    chosen, counts = [], {}
    for example in examples:
        keys = [(example.language, c) for c in example.labels] or [(example.language, example.source)]
        limits = [per_category if example.labels else benign for _ in keys]
        if any(counts.get(k, 0) < limit for k, limit in zip(keys, limits)):
            chosen.append(example)
            for k in keys:
                counts[k] = counts.get(k, 0) + 1
    return chosen


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "support": tp + fn, "precision": p, "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0}


def category_scores(examples: list[Example], flagged: list[set[str]], categories=CATEGORIES_2603) -> dict:
    """{category: {all|en|fr: tp, fp, fn, support, precision, recall, f1}} and a macro average."""
    out = {}
    for category in categories:
        out[category] = {}
        for language in ("all", "en", "fr"):
            pairs = [(category in e.labels, category in f) for e, f in zip(examples, flagged)
                     if language in ("all", e.language)]
            out[category][language] = _prf(sum(t and p for t, p in pairs), sum(p and not t for t, p in pairs),
                                           sum(t and not p for t, p in pairs))
    measured = [c for c in categories if out[c]["all"]["support"]]
    out["macro"] = {"all": {k: sum(out[c]["all"][k] for c in measured) / max(1, len(measured))
                            for k in ("precision", "recall", "f1")}}
    return out


def mistakes(examples: list[Example], flagged: list[set[str]], categories=CATEGORIES_2603) -> dict:
    """Per category, the lines it missed and the lines it flagged wrongly (texts)."""
    out = {}
    for c in categories:
        missed = [e.text for e, f in zip(examples, flagged) if c in e.labels and c not in f]
        wrong = [e.text for e, f in zip(examples, flagged) if c in f and c not in e.labels]
        if missed or wrong:
            out[c] = {"missed": missed, "flagged_wrongly": wrong}
    return out


def false_positives(examples: list[Example], flagged: list[set[str]]) -> dict:
    """Benign lines flagged for anything: the rate, by language, and which categories fired."""
    benign = [(e, f) for e, f in zip(examples, flagged) if not e.labels]
    by_category: dict[str, int] = {}
    for _, f in benign:
        for c in f:
            by_category[c] = by_category.get(c, 0) + 1
    rate = {}
    for language in ("all", "en", "fr"):
        mine = [f for e, f in benign if language in ("all", e.language)]
        rate[language] = sum(bool(f) for f in mine) / len(mine) if mine else 0.0
    return {"lines": len(benign), "flagged": sum(bool(f) for _, f in benign), "rate": rate,
            "by_category": dict(sorted(by_category.items(), key=lambda kv: -kv[1])),
            "examples": [{"text": e.text, "flagged": sorted(f)} for e, f in benign if f][:10]}


def format_scores(name: str, scores: dict, categories=CATEGORIES_2603) -> str:
    lines = [f"{name}: per category (precision / recall / F1 on EN+FR; F1 by language; support)",
             f"  {'category':<24} {'P':>5} {'R':>5} {'F1':>5}   {'F1 en':>5} {'F1 fr':>5}  {'n':>4}"]
    for c in categories:
        s = scores[c]
        lines.append(f"  {c:<24} {s['all']['precision']:5.2f} {s['all']['recall']:5.2f} {s['all']['f1']:5.2f}   "
                     f"{s['en']['f1']:5.2f} {s['fr']['f1']:5.2f}  {s['all']['support']:4d}")
    m = scores["macro"]["all"]
    lines.append(f"  {'macro':<24} {m['precision']:5.2f} {m['recall']:5.2f} {m['f1']:5.2f}")
    return "\n".join(lines)


def format_fpr(label: str, fp: dict) -> str:
    fired = ", ".join(f"{c} {n}" for c, n in fp["by_category"].items()) or "none"
    return (f"{label}: {fp['flagged']}/{fp['lines']} benign lines flagged = {fp['rate']['all']:.1%} "
            f"(en {fp['rate']['en']:.1%}, fr {fp['rate']['fr']:.1%}); categories fired: {fired}")
