"""Train a classifier head (torch) over embedding vectors; the result runs with numpy (ClassifierHead).

The inputs are standardized (each dimension minus its training mean, over its standard deviation,
slightly shrunk towards the mean deviation so that near-constant dimensions are not blown up):
embedding vectors are unit vectors whose dimensions vary by ~1/sqrt(d), and a head learns them
fast and at one learning rate only once they are on a common scale. The standardization is
folded into the first layer of the head at the end, so the served head reads raw vectors.

A shared ReLU layer of `hidden` units (256 by default; None: none), then one linear layer per
target, each target's bias starting at its labels' log-prior. Loss: per target, cross-entropy (single_class) or
binary cross-entropy over its labels (multi_class) on the batch's examples that label it,
averaged over the targets with their weights. AdamW (no weight decay on biases), linear
warm-up then cosine decay to 0. Batches: seeded permutations of the training examples, one
after the other. Everything is seeded: the same data and hyperparameters give the same head.

    head = train_head(features, labels, targets, ClassifierHyper(), "multilingual-e5-small", "query",
                      valid=(valid_features, valid_labels))
    head.metadata["metrics"]  # {target: {"valid_loss", "accuracy", "macro_f1"}} at the last step
"""

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from plateforme.classifiers.head import ClassifierHead, ClassifierTarget
from plateforme.training.classifier_hyper import ClassifierHyper
from plateforme.training.classifier_metrics import (EncodedTarget, all_metrics, encode_labels, mean_accuracy,
                                                    weighted_loss)

__all__ = ["CheckpointReport", "ClassifierHyper", "train_head"]
log = logging.getLogger("plateforme.training")
SCALE_SHRINK = 0.01  # share of the mean variance added to each dimension's variance
Labels = Sequence[dict[str, Sequence[str]]]


@dataclass(frozen=True)
class CheckpointReport:
    step: int
    total_steps: int
    train_loss: float
    valid_loss: float | None  # the targets' weighted mean; None without validation examples
    mean_accuracy: float | None  # the mean of the targets' accuracies
    targets: dict[str, dict]  # target -> {"valid_loss", "accuracy", "macro_f1"}


class _HeadNet(torch.nn.Module):
    def __init__(self, dimension: int, targets: Sequence[ClassifierTarget], hidden: int | None):
        super().__init__()
        self.hidden = torch.nn.Linear(dimension, hidden) if hidden else None
        inputs = hidden or dimension
        self.outputs = torch.nn.ModuleList(torch.nn.Linear(inputs, len(t.labels)) for t in targets)
        if not hidden:  # a linear head is a convex problem: start from zero, the prior in the biases
            for layer in self.outputs:
                torch.nn.init.zeros_(layer.weight)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.hidden is not None:
            x = torch.relu(self.hidden(x))
        return [layer(x) for layer in self.outputs]


def _check(features: np.ndarray, labels: Labels, targets: Sequence[ClassifierTarget], what: str) -> np.ndarray:
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{what} features must be a non-empty (examples, dimension) array, got shape {x.shape}")
    if x.shape[0] != len(labels):
        raise ValueError(f"{what}: {x.shape[0]} feature rows for {len(labels)} label sets")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} features hold NaN or infinite values")
    return x


def _prior_biases(net: _HeadNet, targets: Sequence[ClassifierTarget], encoded: dict[str, EncodedTarget]) -> None:
    with torch.no_grad():
        for layer, target in zip(net.outputs, targets):
            e = encoded[target.name]
            rows = max(int(e.mask.sum()), 1)
            if target.loss_function == "single_class":
                counts = np.bincount(e.y[e.mask], minlength=len(target.labels))
                prior = (counts + 1.0) / (rows + len(target.labels))
                layer.bias.copy_(torch.from_numpy(np.log(prior).astype(np.float32)))
            else:
                prior = np.clip((e.y[e.mask].sum(axis=0) + 0.5) / (rows + 1.0), 1e-3, 1 - 1e-3)
                layer.bias.copy_(torch.from_numpy(np.log(prior / (1 - prior)).astype(np.float32)))


def _loss(logits: list[torch.Tensor], targets: Sequence[ClassifierTarget], masks: list[torch.Tensor],
          ys: list[torch.Tensor]) -> torch.Tensor | None:
    total, weights = None, 0.0
    for out, target, mask, y in zip(logits, targets, masks, ys):
        if not bool(mask.any()) or target.weight <= 0:
            continue
        if target.loss_function == "single_class":
            loss = torch.nn.functional.cross_entropy(out[mask], y[mask])
        else:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out[mask], y[mask])
        total = loss * target.weight if total is None else total + loss * target.weight
        weights += target.weight
    return None if total is None else total / weights


def _learning_rate(base: float, step: int, warmup: int, total: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 0 at `total` (step counts from 0)."""
    if step < warmup:
        return base * (step + 1) / (warmup + 1)
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class _AdamW:
    """AdamW (decoupled weight decay), written out: torch.optim's first use imports torch._dynamo,
    seconds of start-up that a head trained in a second does not need."""

    def __init__(self, groups: list[tuple[list[torch.Tensor], float]], betas=(0.9, 0.999), eps: float = 1e-8):
        self.groups = groups  # (parameters, weight decay)
        self.betas, self.eps = betas, eps
        self.moments = {id(p): (torch.zeros_like(p), torch.zeros_like(p)) for ps, _ in groups for p in ps}
        self.steps = dict.fromkeys(self.moments, 0)  # per parameter: a target no batch example labels gets none

    @torch.no_grad()
    def step(self, lr: float) -> None:
        b1, b2 = self.betas
        for parameters, decay in self.groups:
            for p in parameters:
                if p.grad is None:
                    continue
                self.steps[id(p)] += 1
                c1, c2 = 1 - b1 ** self.steps[id(p)], 1 - b2 ** self.steps[id(p)]
                m, v = self.moments[id(p)]
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                if decay:
                    p.mul_(1 - lr * decay)
                p.addcdiv_(m, (v / c2).sqrt_().add_(self.eps), value=-lr / c1)
                p.grad = None


def _batches(n: int, batch_size: int, steps: int, generator: torch.Generator):
    order = torch.empty(0, dtype=torch.int64)
    for _ in range(steps):
        while len(order) < batch_size:
            order = torch.cat([order, torch.randperm(n, generator=generator)])
        yield order[:batch_size]
        order = order[batch_size:]


def _fold(net: _HeadNet, mean: np.ndarray, scale: np.ndarray, targets: Sequence[ClassifierTarget]):
    """The layers as they read raw vectors: W' = W / scale (per input row), b' = b - (mean / scale) @ W."""
    def fold(weight: torch.Tensor, bias: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        w = weight.detach().double().numpy().T  # (inputs, outputs)
        b = bias.detach().double().numpy()
        return (w / scale[:, None]).astype(np.float32), (b - (mean / scale) @ w).astype(np.float32)

    def plain(layer) -> tuple[np.ndarray, np.ndarray]:
        return (layer.weight.detach().numpy().T.astype(np.float32).copy(),
                layer.bias.detach().numpy().astype(np.float32).copy())

    hidden = fold(net.hidden.weight, net.hidden.bias) if net.hidden is not None else (None, None)
    weights, biases = {}, {}
    for layer, target in zip(net.outputs, targets):
        w, b = plain(layer) if net.hidden is not None else fold(layer.weight, layer.bias)
        weights[target.name], biases[target.name] = w, b
    return hidden, weights, biases


def train_head(features: np.ndarray, labels: Labels, targets: Sequence[ClassifierTarget], hyper: ClassifierHyper,
               embedding_model: str, input_type: str = "query",
               valid: tuple[np.ndarray, Labels] | None = None,
               on_progress: Callable[[int, int, float], None] | None = None,
               on_checkpoint: Callable[[CheckpointReport], None] | None = None) -> ClassifierHead:
    """A head trained on `features` (examples, dimension) float32 and their `labels` ({target: labels}
    per example, a target absent when the example does not label it). `valid` (features, labels):
    evaluated at every checkpoint (every hyper.every(total) steps and the last one).
    on_progress(step, total_steps, train_loss) after each step; on_checkpoint(CheckpointReport)."""
    targets = tuple(targets)
    x = _check(features, labels, targets, "training")
    encoded = encode_labels(labels, targets)
    for target in targets:
        if not encoded[target.name].mask.any():
            raise ValueError(f"no training example labels target {target.name!r}; label some, or drop the target")
    if valid is not None and len(valid[1]) == 0:
        valid = None
    v_encoded = None
    if valid is not None:
        vx = _check(valid[0], valid[1], targets, "validation")
        if vx.shape[1] != x.shape[1]:
            raise ValueError(f"validation features have {vx.shape[1]} dimensions, training ones {x.shape[1]}")
        valid, v_encoded = (vx, valid[1]), encode_labels(valid[1], targets)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches of a few dozen small rows: more threads only wait on each other
    try:
        return _train(x, encoded, targets, hyper, embedding_model, input_type, valid, v_encoded,
                      on_progress, on_checkpoint)
    finally:
        torch.set_num_threads(threads)


def _train(x, encoded, targets, hyper, embedding_model, input_type, valid, v_encoded, on_progress,
           on_checkpoint) -> ClassifierHead:
    mean = x.astype(np.float64).mean(axis=0)
    variance = x.astype(np.float64).var(axis=0)
    scale = np.sqrt(variance + SCALE_SHRINK * variance.mean() + 1e-12)
    standardize = (lambda a: torch.from_numpy(((a - mean) / scale).astype(np.float32)))
    tx = standardize(x)
    masks = [torch.from_numpy(encoded[t.name].mask) for t in targets]
    ys = [torch.from_numpy(encoded[t.name].y) for t in targets]
    vx = None if valid is None else valid[0]
    total = hyper.total_steps(len(x))
    every = hyper.every(total)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(hyper.seed)
        net = _HeadNet(x.shape[1], targets, hyper.hidden)
    _prior_biases(net, targets, encoded)
    decayed = [p for name, p in net.named_parameters() if name.endswith("weight")]
    others = [p for name, p in net.named_parameters() if not name.endswith("weight")]
    optimizer = _AdamW([(decayed, hyper.weight_decay), (others, 0.0)])
    warmup = round(hyper.warmup_fraction * total)
    generator = torch.Generator().manual_seed(hyper.seed)

    def evaluate() -> dict[str, dict]:
        if valid is None:
            return {}
        with torch.no_grad():
            logits = net(standardize(vx))
        probabilities = {t.name: (torch.sigmoid(out) if t.loss_function == "multi_class"
                                  else torch.softmax(out, dim=1)).double().numpy()
                         for out, t in zip(logits, targets)}
        return all_metrics(targets, probabilities, v_encoded)

    metrics: dict[str, dict] = {}
    train_loss = float("nan")
    net.train()
    for step, batch in enumerate(_batches(len(x), hyper.batch(len(x)), total, generator), start=1):
        loss = _loss(net(tx[batch]), targets, [m[batch] for m in masks], [y[batch] for y in ys])
        if loss is not None:  # a batch labelling none of the (positively weighted) targets teaches nothing
            loss.backward()
            optimizer.step(_learning_rate(hyper.learning_rate, step - 1, warmup, total))
            train_loss = float(loss.detach())
        if on_progress is not None:
            on_progress(step, total, train_loss)
        if step % every == 0 or step == total:
            metrics = evaluate()
            if on_checkpoint is not None:
                on_checkpoint(CheckpointReport(step, total, train_loss, weighted_loss(targets, metrics),
                                               mean_accuracy(metrics), metrics))
    log.info("trained a classifier head: %d steps over %d examples, last train loss %.4f, metrics %s",
             total, len(x), train_loss, metrics)

    (hidden_w, hidden_b), weights, biases = _fold(net, mean, scale, targets)
    metadata = {"metrics": metrics, "valid_loss": weighted_loss(targets, metrics), "train_loss": train_loss,
                "training_steps": total, "train_examples": len(x), "valid_examples": 0 if valid is None else len(vx),
                "epochs": round(hyper.epochs_for(total, len(x)), 4), "hyperparameters": asdict(hyper)}
    return ClassifierHead(targets, embedding_model, int(x.shape[1]), weights, biases, input_type,
                          hidden_w, hidden_b, metadata)
