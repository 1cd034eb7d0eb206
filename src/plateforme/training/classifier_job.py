"""A classifier job's part of job.json (`"job_type": "classifier"`): what to train, read and checked.

    "classifier": {"targets": [ClassifierTarget.as_dict(), ...], "embedding_model": "multilingual-e5-small",
                   "input_type": "query", "dimension": 384,
                   "examples_path": ".../examples.jsonl", "features_path": ".../features.npy"}

and its `hyperparameters` (ClassifierTrainingParametersIn's: training_steps, epochs,
learning_rate, weight_decay, warmup_fraction; seq_len is accepted and unused, the embedding
model reads the texts; beyond Mistral: hidden (0 for a linear head), batch_size). The job's
`seed` and `checkpoint_every` apply. Training files' weights do not apply to classifier jobs.
"""

from dataclasses import dataclass
from pathlib import Path

from plateforme.classifiers.head import LOSS_FUNCTIONS, ClassifierTarget
from plateforme.training.classifier_hyper import DEFAULT_HIDDEN, DEFAULT_LEARNING_RATE, ClassifierHyper
from plateforme.training.job import JobError, number

INPUT_TYPES = ("query", "document")


@dataclass(frozen=True)
class ClassifierSpec:
    targets: tuple[ClassifierTarget, ...]
    embedding_model: str
    input_type: str
    dimension: int
    examples_path: Path
    features_path: Path
    hyper: ClassifierHyper


def _target(raw, i: int) -> ClassifierTarget:
    where = f"job.json: classifier.targets[{i}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise JobError(f"{where} must be an object with a name, labels, weight and loss_function")
    labels = raw.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels) \
            or len(set(labels)) != len(labels):
        raise JobError(f"{where} ({raw['name']!r}): labels must be a non-empty list of distinct strings")
    loss = raw.get("loss_function") or "single_class"
    if loss not in LOSS_FUNCTIONS:
        raise JobError(f"{where} ({raw['name']!r}): loss_function must be one of {', '.join(LOSS_FUNCTIONS)}")
    weight = number(raw, "weight", f"{where}.", float, 0, 1e6, 1.0)
    return ClassifierTarget(raw["name"], tuple(labels), weight, loss)


def _text(section: dict, key: str) -> str:
    value = section.get(key)
    if not isinstance(value, str) or not value:
        raise JobError(f"job.json: classifier.{key} is missing")
    return value


def parse_hyper(raw: dict, seed: int, checkpoint_every: int | None) -> ClassifierHyper:
    hyper = raw.get("hyperparameters") or {}
    if not isinstance(hyper, dict):
        raise JobError("job.json: hyperparameters must be an object")
    h = "job.json: hyperparameters."
    params = ClassifierHyper(
        learning_rate=number(hyper, "learning_rate", h, float, 1e-8, 1, DEFAULT_LEARNING_RATE),
        weight_decay=number(hyper, "weight_decay", h, float, 0, 10, 0.1),
        warmup_fraction=number(hyper, "warmup_fraction", h, float, 0, 1, 0.05),
        training_steps=number(hyper, "training_steps", h, int, 1, 10_000_000, None),
        epochs=number(hyper, "epochs", h, float, 1e-6, 100_000, None),
        hidden=number(hyper, "hidden", h, int, 0, 65_536, DEFAULT_HIDDEN) or None,  # 0: a linear head
        batch_size=number(hyper, "batch_size", h, int, 1, 65_536, 32),
        seed=seed,
        checkpoint_every=checkpoint_every,
    )
    if params.training_steps is not None and params.epochs is not None:
        raise JobError("job.json: give hyperparameters.training_steps or hyperparameters.epochs, not both")
    return params


def parse_classifier(raw: dict, seed: int, checkpoint_every: int | None) -> ClassifierSpec:
    section = raw.get("classifier")
    if not isinstance(section, dict):
        raise JobError('job.json: a "classifier" job needs a classifier object (targets, embedding_model, '
                       "input_type, dimension, examples_path, features_path)")
    targets = section.get("targets")
    if not isinstance(targets, list) or not targets:
        raise JobError("job.json: classifier.targets must be a non-empty list of targets")
    parsed = tuple(_target(t, i) for i, t in enumerate(targets))
    names = [t.name for t in parsed]
    if len(set(names)) != len(names):
        raise JobError(f"job.json: classifier.targets: target names must be distinct, got {names}")
    if not any(t.weight > 0 for t in parsed):
        raise JobError("job.json: classifier.targets: every weight is 0; give a target a weight above 0")
    input_type = section.get("input_type") or "query"
    if input_type not in INPUT_TYPES:
        raise JobError(f"job.json: classifier.input_type must be one of {', '.join(INPUT_TYPES)}, got {input_type!r}")
    dimension = number(section, "dimension", "job.json: classifier.", int, 1, 1_000_000, None)
    if dimension is None:
        raise JobError("job.json: classifier.dimension is missing (the embedding model's vector size)")
    return ClassifierSpec(
        targets=parsed,
        embedding_model=_text(section, "embedding_model"),
        input_type=input_type,
        dimension=dimension,
        examples_path=Path(_text(section, "examples_path")),
        features_path=Path(_text(section, "features_path")),
        hyper=parse_hyper(raw, seed, checkpoint_every),
    )
