"""A classifier head: a small network over embedding vectors, one output layer per target.

Trained by classifier fine-tuning jobs (training/, with torch) and run by the gateway with numpy
only. A head reads the vectors of one embedding model (`embedding_model`, `dimension`,
`input_type`), optionally through one shared ReLU hidden layer, and gives for each target the
probability of each label: softmax over the labels of a `single_class` target, an independent
sigmoid per label of a `multi_class` one.

Stored as one `.npz` file (no pickles): the arrays, and a JSON document describing them.

    head = ClassifierHead.load(path)
    head.scores(vectors)  # [{"moderation": {"violence_and_threats": 0.91, ...}}, ...]
"""

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT = "plateforme-classifier-head/1"
LOSS_FUNCTIONS = ("single_class", "multi_class")


class HeadFormatError(ValueError):
    """The file is not a classifier head this version can read; the message says why."""


@dataclass(frozen=True)
class ClassifierTarget:
    name: str
    labels: tuple[str, ...]
    weight: float = 1.0
    loss_function: str = "single_class"  # "single_class" | "multi_class"

    def as_dict(self) -> dict:
        return {"name": self.name, "labels": list(self.labels), "weight": self.weight,
                "loss_function": self.loss_function}

    @classmethod
    def from_dict(cls, raw: dict) -> "ClassifierTarget":
        return cls(str(raw["name"]), tuple(str(label) for label in raw["labels"]), float(raw.get("weight", 1.0)),
                   str(raw.get("loss_function") or "single_class"))


@dataclass
class ClassifierHead:
    targets: tuple[ClassifierTarget, ...]
    embedding_model: str  # the served name of the embedding model whose vectors it reads
    dimension: int
    # target name -> (inputs, len(labels)) float32 and (len(labels),) float32
    weights: dict[str, np.ndarray]
    biases: dict[str, np.ndarray]
    input_type: str = "query"  # how the inputs are embedded ("query" | "document")
    # Optional shared hidden layer: (dimension, hidden) and (hidden,), ReLU.
    hidden_weight: np.ndarray | None = None
    hidden_bias: np.ndarray | None = None
    # Anything the trainer wants kept with the head (metrics, thresholds, training data summary).
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        names = [t.name for t in self.targets]
        if not names or len(set(names)) != len(names):
            raise HeadFormatError(f"a head needs targets with distinct names, got {names}")
        inputs = self.dimension
        if (self.hidden_weight is None) != (self.hidden_bias is None):
            raise HeadFormatError("hidden_weight and hidden_bias go together")
        if self.hidden_weight is not None:
            if self.hidden_weight.shape[0] != self.dimension or self.hidden_bias.shape != self.hidden_weight.shape[1:]:
                raise HeadFormatError(f"hidden layer shapes {self.hidden_weight.shape} / {self.hidden_bias.shape} "
                                      f"do not fit {self.dimension} inputs")
            inputs = self.hidden_weight.shape[1]
        for target in self.targets:
            if target.loss_function not in LOSS_FUNCTIONS:
                raise HeadFormatError(f"target {target.name!r}: loss_function must be one of {LOSS_FUNCTIONS}")
            if len(target.labels) < 1 or len(set(target.labels)) != len(target.labels):
                raise HeadFormatError(f"target {target.name!r} needs distinct labels, got {list(target.labels)}")
            w, b = self.weights.get(target.name), self.biases.get(target.name)
            if w is None or b is None or w.shape != (inputs, len(target.labels)) or b.shape != (len(target.labels),):
                raise HeadFormatError(f"target {target.name!r}: weights must be ({inputs}, {len(target.labels)}) "
                                      f"and biases ({len(target.labels)},)")

    def probabilities(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """target name -> (n, len(labels)) probabilities for `vectors` (n, dimension)."""
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dimension:
            raise ValueError(f"the head reads ({self.dimension},) vectors of {self.embedding_model!r}, "
                             f"got shape {x.shape}")
        if self.hidden_weight is not None:
            x = np.maximum(x @ self.hidden_weight + self.hidden_bias, 0.0)
        out = {}
        for target in self.targets:
            logits = (x @ self.weights[target.name] + self.biases[target.name]).astype(np.float64)
            if target.loss_function == "multi_class":
                out[target.name] = 1.0 / (1.0 + np.exp(-logits))
            else:
                logits -= logits.max(axis=1, keepdims=True)
                e = np.exp(logits)
                out[target.name] = e / e.sum(axis=1, keepdims=True)
        return out

    def scores(self, vectors: np.ndarray) -> list[dict[str, dict[str, float]]]:
        """Per input: {target: {label: probability}}, as /v1/classifications answers."""
        probs = self.probabilities(vectors)
        rows = len(np.asarray(vectors))
        return [{t.name: {label: float(p) for label, p in zip(t.labels, probs[t.name][i])} for t in self.targets}
                for i in range(rows)]

    def to_bytes(self) -> bytes:
        meta = {"format": FORMAT, "targets": [t.as_dict() for t in self.targets],
                "embedding_model": self.embedding_model, "dimension": self.dimension,
                "input_type": self.input_type, "hidden": self.hidden_weight is not None, "metadata": self.metadata}
        arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
        for i, target in enumerate(self.targets):
            arrays[f"w{i}"] = self.weights[target.name].astype(np.float32)
            arrays[f"b{i}"] = self.biases[target.name].astype(np.float32)
        if self.hidden_weight is not None:
            arrays["hidden_w"] = self.hidden_weight.astype(np.float32)
            arrays["hidden_b"] = self.hidden_bias.astype(np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "ClassifierHead":
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                meta = json.loads(arrays["meta"].tobytes().decode())
                if meta.get("format") != FORMAT:
                    raise HeadFormatError(f"not a {FORMAT} file (format {meta.get('format')!r})")
                targets = tuple(ClassifierTarget.from_dict(t) for t in meta["targets"])
                weights = {t.name: arrays[f"w{i}"] for i, t in enumerate(targets)}
                biases = {t.name: arrays[f"b{i}"] for i, t in enumerate(targets)}
                hidden = (arrays["hidden_w"], arrays["hidden_b"]) if meta.get("hidden") else (None, None)
        except HeadFormatError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise HeadFormatError(f"cannot read the classifier head: {exc}") from exc
        return cls(targets, str(meta["embedding_model"]), int(meta["dimension"]), weights, biases,
                   str(meta.get("input_type") or "query"), hidden[0], hidden[1], dict(meta.get("metadata") or {}))

    def save(self, path: Path) -> None:
        """Write atomically (a temporary name, then renamed)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.to_bytes())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "ClassifierHead":
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise HeadFormatError(f"cannot read the classifier head {path}: {exc.strerror}") from exc
        return cls.from_bytes(data)
