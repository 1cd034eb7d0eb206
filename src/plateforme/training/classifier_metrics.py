"""Labels as arrays, and a classifier head's metrics per target (numpy only).

For each target, on the examples that label it:
- valid_loss: the mean cross-entropy (single_class) or the mean binary cross-entropy over every
  (example, label) pair (multi_class), the losses the head is trained with;
- accuracy: the share of examples whose prediction is right: the most probable label
  (single_class), or every label's yes/no at probability 0.5 (multi_class: exact match, so a
  benign example counts as right only when no label reaches 0.5);
- macro_f1: the mean F1 over the labels that occur in the truth or in the predictions (labels
  never seen nor predicted are left out; 1.0 when there is none, i.e. everything was rightly "none").
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from plateforme.classifiers.head import ClassifierTarget

EPS = 1e-7


@dataclass(frozen=True)
class EncodedTarget:
    mask: np.ndarray  # (n,) bool: the example labels this target
    y: np.ndarray  # single_class: (n,) int64 label indices (-1 unlabelled); multi_class: (n, labels) float32


def encode_labels(labels: Sequence[dict[str, Sequence[str]]], targets: Sequence[ClassifierTarget]
                  ) -> dict[str, EncodedTarget]:
    """Per target, which examples label it and their labels as indices / multi-hot rows."""
    n = len(labels)
    out = {}
    for target in targets:
        index = {label: i for i, label in enumerate(target.labels)}
        mask = np.zeros(n, dtype=bool)
        if target.loss_function == "single_class":
            y = np.full(n, -1, dtype=np.int64)
        else:
            y = np.zeros((n, len(target.labels)), dtype=np.float32)
        for row, example in enumerate(labels):
            chosen = example.get(target.name)
            if chosen is None:
                continue
            if isinstance(chosen, str):  # a single label given bare
                chosen = (chosen,)
            mask[row] = True
            try:
                if target.loss_function == "single_class":
                    if len(chosen) != 1:
                        raise ValueError(f"single_class target {target.name!r} needs one label per example, "
                                         f"example {row} has {list(chosen)}")
                    y[row] = index[chosen[0]]
                else:
                    for label in chosen:
                        y[row, index[label]] = 1.0
            except KeyError as exc:
                raise ValueError(f"example {row}: unknown label {exc.args[0]!r} for target {target.name!r}") from None
        out[target.name] = EncodedTarget(mask, y)
    return out


def _f1_mean(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Macro F1 of boolean (n, labels) arrays over the labels present in either."""
    tp = (truth & predicted).sum(axis=0)
    fp = (~truth & predicted).sum(axis=0)
    fn = (truth & ~predicted).sum(axis=0)
    present = (tp + fp + fn) > 0
    if not present.any():
        return 1.0
    f1 = 2 * tp[present] / (2 * tp[present] + fp[present] + fn[present])
    return float(f1.mean())


def target_metrics(target: ClassifierTarget, probabilities: np.ndarray, encoded: EncodedTarget) -> dict | None:
    """{"valid_loss", "accuracy", "macro_f1"} of one target's (n, labels) probabilities; None when no
    example labels the target."""
    if not encoded.mask.any():
        return None
    p = np.clip(probabilities[encoded.mask].astype(np.float64), EPS, 1 - EPS)
    y = encoded.y[encoded.mask]
    labels = len(target.labels)
    if target.loss_function == "single_class":
        loss = float(-np.log(p[np.arange(len(y)), y]).mean())
        chosen = p.argmax(axis=1)
        accuracy = float((chosen == y).mean())
        truth = np.eye(labels, dtype=bool)[y]
        predicted = np.eye(labels, dtype=bool)[chosen]
    else:
        truth = y > 0.5
        loss = float(-(truth * np.log(p) + (~truth) * np.log(1 - p)).mean())
        predicted = p >= 0.5
        accuracy = float((predicted == truth).all(axis=1).mean())
    return {"valid_loss": loss, "accuracy": accuracy, "macro_f1": _f1_mean(truth, predicted)}


def all_metrics(targets: Sequence[ClassifierTarget], probabilities: dict[str, np.ndarray],
                encoded: dict[str, EncodedTarget]) -> dict[str, dict]:
    """target name -> its metrics, for the targets some example labels."""
    out = {}
    for target in targets:
        metrics = target_metrics(target, probabilities[target.name], encoded[target.name])
        if metrics is not None:
            out[target.name] = metrics
    return out


def weighted_loss(targets: Sequence[ClassifierTarget], metrics: dict[str, dict]) -> float | None:
    """The targets' valid losses weighted as in training (targets without examples left out)."""
    pairs = [(t.weight, metrics[t.name]["valid_loss"]) for t in targets if t.name in metrics]
    total = sum(w for w, _ in pairs)
    return sum(w * loss for w, loss in pairs) / total if pairs and total > 0 else None


def mean_accuracy(metrics: dict[str, dict]) -> float | None:
    return float(np.mean([m["accuracy"] for m in metrics.values()])) if metrics else None
