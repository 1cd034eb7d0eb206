"""Classifier fine-tuning jobs (job_type "classifier"): what their creation checks, and the part of
the trainer's job.json that says what to train.

A classifier job trains a head (classifiers/head.py) over a served EMBEDDING model: the gateway
embeds the examples (fine_tuning/classifier_embedding.py), the trainer trains the head on the
vectors. Its targets (`classifier_targets`) each name their labels and how they are trained:
`single_class` (exactly one label per example: softmax) or `multi_class` (any of them, maybe
none: one sigmoid per label).
"""

from plateforme.classifiers.head import LOSS_FUNCTIONS, ClassifierTarget
from plateforme.fine_tuning.errors import FineTuningError
from plateforme.models.registry import ModelRegistry
from plateforme.models.spec import ModelSpec
from plateforme.training.classifier_hyper import DEFAULT_LEARNING_RATE

CLASSIFIER = "classifier"
# The hyperparameters of ClassifierTrainingParametersIn.
HYPERPARAMETERS = ("training_steps", "learning_rate", "weight_decay", "warmup_fraction", "epochs", "seq_len")
# What a job shows (and its trainer gets) for those not given.
DEFAULTS = {"learning_rate": DEFAULT_LEARNING_RATE, "weight_decay": 0.1, "warmup_fraction": 0.05}
INPUT_TYPE = "query"  # how examples and classified texts are embedded
MAX_TARGETS = 32
MAX_LABELS = 1000
MAX_NAME = 200


def _refuse(message: str, param: str = "classifier_targets") -> FineTuningError:
    return FineTuningError(message, 400, param)


def _target(raw, i: int) -> ClassifierTarget:
    where = f"classifier_targets[{i}]"
    if not isinstance(raw, dict):
        raise _refuse(f"{where} must be an object with a name and labels")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise _refuse(f"{where}.name must be a non-empty string of at most {MAX_NAME} characters")
    labels = raw.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x.strip() for x in labels):
        raise _refuse(f"{where} ({name!r}): labels must be a non-empty list of non-empty strings")
    if len(labels) > MAX_LABELS:
        raise _refuse(f"{where} ({name!r}): at most {MAX_LABELS} labels")
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    if repeated:
        raise _refuse(f"{where} ({name!r}): label(s) {', '.join(map(repr, repeated))} given twice")
    loss = raw.get("loss_function") or "single_class"
    if loss not in LOSS_FUNCTIONS:
        raise _refuse(f"{where} ({name!r}): loss_function must be one of {', '.join(LOSS_FUNCTIONS)}, got {loss!r}")
    if loss == "single_class" and len(labels) < 2:
        raise _refuse(f"{where} ({name!r}): a single_class target chooses one of its labels, so it needs at "
                      "least two; give more labels, or make it multi_class (each label on or off)")
    weight = raw.get("weight")
    weight = 1.0 if weight is None else weight
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1e6:
        raise _refuse(f"{where} ({name!r}): weight must be a number between 0 and 1000000, got {weight!r}")
    return ClassifierTarget(name, tuple(labels), float(weight), loss)


def checked_targets(raw) -> list[dict]:
    """The job's targets, checked, as ClassifierTarget.as_dict() (loss_function and weight filled in)."""
    if not raw:
        raise _refuse("classifier jobs need classifier_targets: a list of {name, labels, loss_function "
                      "('single_class' or 'multi_class'), weight}")
    if not isinstance(raw, list) or len(raw) > MAX_TARGETS:
        raise _refuse(f"classifier_targets must be a list of at most {MAX_TARGETS} targets")
    targets = [_target(t, i) for i, t in enumerate(raw)]
    names = [t.name for t in targets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise _refuse(f"classifier_targets: target name(s) {', '.join(map(repr, repeated))} given twice")
    if not any(t.weight > 0 for t in targets):
        raise _refuse("classifier_targets: every weight is 0, so nothing would be trained; give a target a weight > 0")
    return [t.as_dict() for t in targets]


def embedding_spec(registry: ModelRegistry, model: str) -> ModelSpec:
    """The served embedding model a classifier job trains a head over (its name or an alias)."""
    embedding = sorted(s.name for s in registry.specs if s.embedding)
    served = f"served here: {', '.join(map(repr, embedding))}" if embedding else "none is served here"
    spec = registry.get(model)
    if spec is None:
        raise FineTuningError(f"model {model!r} does not exist; classifier jobs train a head over an embedding "
                              f"model ({served})", 404, "model")
    if not spec.embedding:
        raise FineTuningError(f"model {spec.name!r} is a chat model; classifier jobs train a head over an embedding "
                              f"model ({served}); fine-tune a chat model with job_type 'completion'", 400, "model")
    return spec


def checked_hyperparameters(raw: dict | None) -> dict:
    """ClassifierTrainingParametersIn's fields, with DEFAULTS for those not given."""
    given = {k: v for k, v in (raw or {}).items() if v is not None}
    unknown = sorted(set(given) - set(HYPERPARAMETERS))
    if unknown:
        raise FineTuningError(f"hyperparameters: {', '.join(unknown)} do not apply to classifier jobs (they take "
                              f"{', '.join(HYPERPARAMETERS)})", 400, "hyperparameters")
    if given.get("training_steps") is not None and given.get("epochs") is not None:
        raise FineTuningError("give hyperparameters.training_steps or hyperparameters.epochs, not both",
                              400, "hyperparameters")
    return {**DEFAULTS, **given}


def classifier_section(targets: list[dict], embedding_model: str, dimension: int, examples_path: str,
                       features_path: str) -> dict:
    """The `classifier` part of a classifier job's job.json."""
    return {"targets": targets, "embedding_model": embedding_model, "input_type": INPUT_TYPE,
            "dimension": dimension, "examples_path": examples_path, "features_path": features_path}
