"""Which examples each training step takes: a pure function of the data, the hyperparameters and the seed.

A step is a batch of BATCH_EXAMPLES whole conversations (never cut, never packed together).
To avoid padding, each epoch is shuffled, cut into pools of POOL_BATCHES batches, each pool
sorted by length and cut into batches, and the epoch's batches shuffled again: a batch holds
conversations of similar lengths, and the order of batches stays random.

File weights: a file's examples appear in proportion to its weight. Per epoch, an example of
file f appears m_f = w_f * D / sum_g(w_g * D_g) times (D_g: tokens of file g, D: all tokens),
as floor(m_f) copies plus one more with probability frac(m_f). With equal weights every example
appears once per epoch; weight 2 against 1 makes a file's examples appear twice as often. An
epoch therefore holds about D tokens, and `epochs` = trained tokens / D.

Steps: `training_steps` when given; otherwise `epochs` (default DEFAULT_EPOCHS), the last
partial epoch taking its share of that epoch's batches. The plan is the same on every rank and
after a resume, so a step always processes the same global batch.
"""

import hashlib
import json
import math
import random
from dataclasses import dataclass

BATCH_EXAMPLES = 8
POOL_BATCHES = 16
DEFAULT_EPOCHS = 1.0


@dataclass(frozen=True)
class Plan:
    steps: list[list[int]]  # per step, the example indices (sorted longest first)
    step_tokens: list[int]  # per step, the tokens of its examples (padding excluded)
    data_tokens: int

    @property
    def total_steps(self) -> int:
        return len(self.steps)

    @property
    def train_tokens(self) -> int:
        return sum(self.step_tokens)

    @property
    def epochs(self) -> float:
        return self.train_tokens / self.data_tokens

    @property
    def tokens_per_step(self) -> int:
        return round(self.train_tokens / self.total_steps)

    def fingerprint(self) -> str:
        """Identifies the plan, so that a checkpoint is only resumed by the job that wrote it."""
        return hashlib.sha256(json.dumps(self.steps).encode()).hexdigest()[:16]


def _multiplicities(lengths: list[int], files: list[int], weights: list[float]) -> list[float]:
    file_tokens = [0] * len(weights)
    for length, f in zip(lengths, files):
        file_tokens[f] += length
    total = sum(file_tokens)
    weighted = sum(w * t for w, t in zip(weights, file_tokens))
    return [w * total / weighted for w in weights]


def _epoch(lengths: list[int], files: list[int], per_file: list[float], rng: random.Random) -> list[list[int]]:
    chosen = []
    for index, f in enumerate(files):
        copies = math.floor(per_file[f]) + (rng.random() < per_file[f] - math.floor(per_file[f]))
        chosen.extend([index] * copies)
    rng.shuffle(chosen)
    pool_size = BATCH_EXAMPLES * POOL_BATCHES
    batches = []
    for start in range(0, len(chosen), pool_size):
        pool = sorted(chosen[start:start + pool_size], key=lambda i: -lengths[i])
        batches.extend(pool[i:i + BATCH_EXAMPLES] for i in range(0, len(pool), BATCH_EXAMPLES))
    rng.shuffle(batches)
    return batches


def make_plan(lengths: list[int], files: list[int], weights: list[float], training_steps: int | None,
              epochs: float | None, seed: int) -> Plan:
    """The steps of a job whose training examples have token `lengths` and come from `files`
    (index into `weights`, the file weights)."""
    if not lengths:
        raise ValueError("no training example to plan steps for")
    per_file = _multiplicities(lengths, files, weights)
    rng = random.Random(seed)
    steps: list[list[int]] = []
    if training_steps is not None:
        while len(steps) < training_steps:
            steps.extend(_epoch(lengths, files, per_file, rng))
        steps = steps[:training_steps]
    else:
        wanted = DEFAULT_EPOCHS if epochs is None else epochs
        for _ in range(math.floor(wanted)):
            steps.extend(_epoch(lengths, files, per_file, rng))
        part = wanted - math.floor(wanted)
        if part > 0:
            last = _epoch(lengths, files, per_file, rng)
            steps.extend(last[:round(part * len(last))])
        if not steps:  # a tiny fraction of one epoch: still one step
            steps = _epoch(lengths, files, per_file, rng)[:1]
    return Plan(steps, [sum(lengths[i] for i in step) for step in steps], sum(lengths))
