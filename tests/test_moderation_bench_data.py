"""The moderation benchmark's held-out set (benchmarks/data/moderation/) and its metrics
(benchmarks/moderation_eval.py): the files are valid classifier training data, cover every
category in both languages, share no line (nor a near copy) with the training seed set, and the counts are right."""

import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from plateforme.classifiers.head import ClassifierTarget
from plateforme.moderation.categories import CATEGORIES_2603
from plateforme.training.classifier_data import read_classifier_examples

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import moderation_eval as ev  # noqa: E402

SEED = ROOT / "src" / "plateforme" / "moderation" / "seed"
TARGET = ClassifierTarget("moderation", CATEGORIES_2603, loss_function="multi_class")


@pytest.mark.parametrize("name", [*ev.HELDOUT.values(), ev.BUSINESS])
def test_every_line_is_valid_training_data(name):
    examples, errors = read_classifier_examples(ev.DATA / name, [TARGET])
    assert errors == []
    assert len(examples) == len((ev.DATA / name).read_text(encoding="utf-8").strip().splitlines())


def test_every_category_in_both_languages_and_benign_look_alikes():
    heldout = ev.load_heldout()
    for language in ("en", "fr"):
        mine = [e for e in heldout if e.language == language]
        counts = {c: sum(c in e.labels for e in mine) for c in CATEGORIES_2603}
        assert min(counts.values()) >= 15, (language, counts)
        assert sum(not e.labels for e in mine) >= 40
        assert all(ev.language_of(e.text) == language for e in mine)


def test_business_questions_are_benign_in_both_languages():
    business = ev.load_business()
    assert len(business) >= 200
    assert min(sum(e.language == lang for e in business) for lang in ("en", "fr")) >= 100


def _words(text: str) -> frozenset[str]:
    return frozenset(re.sub(r"[^\w]+", " ", text.casefold()).split())


def test_no_line_close_to_one_of_the_training_seed_set():
    """Held out: no line shares 70 % of its words (Jaccard) with a seed line, so no rewording of one."""
    seed = [_words(text) for path in sorted(SEED.glob("*.jsonl")) for text in _texts(path)]
    assert len(seed) > 500, f"no seed set in {SEED}"
    lines_of: dict[str, list[int]] = {}
    for i, words in enumerate(seed):
        for word in words:
            lines_of.setdefault(word, []).append(i)
    for name in [*ev.HELDOUT.values(), ev.BUSINESS]:
        close = []
        for n, text in enumerate(_texts(ev.DATA / name), 1):
            words = _words(text)
            shared = Counter(i for word in words for i in lines_of.get(word, ()))
            if any(k / (len(words) + len(seed[i]) - k) >= 0.7 for i, k in shared.items()):
                close.append(n)
        assert close == [], f"{name}: lines {close} are (nearly) lines of the training seed set: reword them"


def _texts(path: Path) -> list[str]:
    examples, _ = read_classifier_examples(path, [TARGET])
    return [e.text for e in examples]


def test_scores_count_each_category_and_language():
    examples = [ev.Example("a", frozenset({"law"}), "en", "heldout"),
                ev.Example("b", frozenset({"law", "pii"}), "fr", "heldout"),
                ev.Example("c", frozenset(), "fr", "heldout"),
                ev.Example("d", frozenset(), "en", "business")]
    flagged = [{"law"}, {"pii"}, {"law"}, set()]
    scores = ev.category_scores(examples, flagged, ("law", "pii"))
    assert scores["law"]["all"] | {} == {"tp": 1, "fp": 1, "fn": 1, "support": 2, "precision": 0.5, "recall": 0.5,
                                         "f1": 0.5}
    assert scores["law"]["en"]["f1"] == 1.0 and scores["law"]["fr"]["tp"] == 0
    assert scores["pii"]["all"]["f1"] == 1.0
    assert scores["macro"]["all"]["f1"] == 0.75
    fp = ev.false_positives(examples, flagged)
    assert (fp["lines"], fp["flagged"], fp["rate"]["fr"], fp["rate"]["en"]) == (2, 1, 1.0, 0.0)
    assert fp["by_category"] == {"law": 1}


def test_sample_takes_lines_per_category_and_language():
    heldout = ev.load_heldout()
    chosen = ev.sample(heldout, 2, 3)
    for language in ("en", "fr"):
        for category in CATEGORIES_2603:
            assert sum(category in e.labels and e.language == language for e in chosen) >= 2
        assert sum(not e.labels and e.language == language for e in chosen) == 3
