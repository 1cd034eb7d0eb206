"""Classifier fine-tuning in the trainer: the data checks, train_head (it learns, metrics per target,
determinism, the folded standardization), and `validate` / `run` end to end as a subprocess.

Features are synthetic vectors (clusters on the unit sphere, as embeddings are) or a hashed bag of
words of the texts: no embedding model runs here (the gateway embeds; tests/test_classifier_jobs.py
covers that path), so these stay unit-fast.
"""

import json
import zlib

import numpy as np
import pytest

from plateforme.classifiers.head import ClassifierHead, ClassifierTarget
from plateforme.training.classifier_data import (ClassifierExample, label_counts, parse_classifier_line,
                                                 read_classifier_examples, read_examples_file, write_examples_file)
from plateforme.training.classifier_hyper import DEFAULT_HIDDEN, DEFAULT_LEARNING_RATE
from plateforme.training.classifier_metrics import all_metrics, encode_labels, target_metrics
from plateforme.training.classifier_training import ClassifierHyper, train_head

SENTIMENT = ClassifierTarget("sentiment", ("negative", "neutral", "positive"))
TOPICS = ClassifierTarget("topics", ("billing", "shipping", "refund"), 1.0, "multi_class")
TARGETS = (SENTIMENT, TOPICS)


def synthetic(n: int, seed: int, dimension: int = 96):
    """Unit vectors: a sentiment direction plus one direction per topic present, plus noise.
    Every fourth example has no topic (an empty multi_class list)."""
    rng = np.random.default_rng(seed)
    directions = np.random.default_rng(1234).normal(size=(6, dimension))
    features, labels = [], []
    for i in range(n):
        sentiment = int(rng.integers(3))
        topics = [] if i % 4 == 0 else [t for t in range(3) if rng.random() < 0.45] or [int(rng.integers(3))]
        v = 1.2 * directions[sentiment] + sum(1.2 * directions[3 + t] for t in topics) + rng.normal(size=dimension)
        features.append(v / np.linalg.norm(v))
        labels.append({"sentiment": (SENTIMENT.labels[sentiment],),
                       "topics": tuple(TOPICS.labels[t] for t in topics)})
    return np.asarray(features, dtype=np.float32), labels


# --- the data ------------------------------------------------------------------------------------

BAD_LINES = [
    ("{oops", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ({"labels": {"sentiment": "neutral"}}, "has no text"),
    ({"text": "  ", "labels": {"sentiment": "neutral"}}, "non-empty string"),
    ({"text": "hi", "messages": [{"role": "user", "content": "hi"}], "labels": {"sentiment": "neutral"}},
     "not both"),
    ({"text": "hi"}, "labels must be a non-empty object"),
    ({"text": "hi", "labels": {}}, "labels must be a non-empty object"),
    ({"text": "hi", "labels": {"mood": "happy"}}, "unknown target 'mood'; the job's targets are 'sentiment', 'topics'"),
    ({"text": "hi", "labels": {"sentiment": "angry"}}, "unknown label 'angry' for target 'sentiment'"),
    ({"text": "hi", "labels": {"sentiment": ["neutral"]}}, "single_class: give its one label as a string"),
    ({"text": "hi", "labels": {"topics": "billing"}}, "multi_class: give a list of labels"),
    ({"text": "hi", "labels": {"topics": ["billing", "weather"]}}, "unknown label 'weather' for target 'topics'"),
    ({"text": "hi", "labels": {"topics": [3]}}, "a label must be a string"),
    ({"messages": [], "labels": {"sentiment": "neutral"}}, "non-empty list"),
    ({"messages": [{"role": "robot", "content": "x"}], "labels": {"sentiment": "neutral"}}, "role must be one of"),
    ({"messages": [{"role": "user", "content": " "}], "labels": {"sentiment": "neutral"}}, "no text to classify"),
]


def write_lines(path, lines):
    path.write_bytes(b"".join((line if isinstance(line, bytes) else
                               (line if isinstance(line, str) else json.dumps(line)).encode()) + b"\n"
                              for line in lines))
    return path


def test_each_bad_line_is_reported_with_its_number_and_why(tmp_path):
    good = [{"text": "Great service", "labels": {"sentiment": "positive", "topics": []}},
            {"messages": [{"role": "user", "content": "Where is my parcel"}, {"role": "assistant", "content": "Here"}],
             "labels": {"topics": ["shipping", "shipping"]}}]
    lines = good[:1] + ["   "] + [line for line, _ in BAD_LINES] + [b"\xff\xfe bad bytes"] + good[1:]
    examples, errors = read_classifier_examples(write_lines(tmp_path / "train.jsonl", lines), TARGETS)
    assert examples == [ClassifierExample("Great service", {"sentiment": ("positive",), "topics": ()}),
                        ClassifierExample("user: Where is my parcel\nassistant: Here", {"topics": ("shipping",)})]
    assert [e["line"] for e in errors] == list(range(3, 3 + len(BAD_LINES) + 1))  # the blank line 2 is skipped
    for error, (_, reason) in zip(errors, BAD_LINES + [(None, "not UTF-8")]):
        assert reason in error["reason"], error
    counts = label_counts(examples, TARGETS)
    assert counts["sentiment"] == {"labelled": 1, "labels": {"negative": 0, "neutral": 0, "positive": 1}}
    assert counts["topics"] == {"labelled": 2, "labels": {"billing": 0, "shipping": 1, "refund": 0}}


def test_examples_file_round_trip(tmp_path):
    pairs = [(ClassifierExample("é ok", {"topics": ()}), "train"),
             (ClassifierExample("b", {"sentiment": ("neutral",), "topics": ("refund", "billing")}), "valid")]
    assert write_examples_file(tmp_path / "examples.jsonl", pairs) == 2
    assert read_examples_file(tmp_path / "examples.jsonl") == pairs
    with pytest.raises(ValueError, match="split must be one of"):
        write_examples_file(tmp_path / "x.jsonl", [(pairs[0][0], "test")])


def test_parse_line_keeps_only_the_targets_it_labels():
    example = parse_classifier_line('{"text": "x", "labels": {"topics": ["refund"]}}', TARGETS)
    assert example.labels == {"topics": ("refund",)}


# --- the metrics ---------------------------------------------------------------------------------

def test_metrics_per_target_by_hand():
    labels = [{"sentiment": ("negative",), "topics": ("billing",)}, {"sentiment": ("positive",), "topics": ()},
              {"sentiment": ("positive",)}, {"topics": ("billing", "refund")}]
    encoded = encode_labels(labels, TARGETS)
    single = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.1, 0.4], [1 / 3] * 3])
    m = target_metrics(SENTIMENT, single, encoded["sentiment"])  # rows 0-2 label it; row 2 is wrong
    assert m["valid_loss"] == pytest.approx(-(np.log(0.7) + np.log(0.6) + np.log(0.4)) / 3)
    assert m["accuracy"] == pytest.approx(2 / 3)
    # negative: tp 1 (F1 1), positive: tp 1 fn 1 (F1 2/3), predicted-negative row 2 makes negative fp 1: F1 2/3
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    multi = np.array([[0.9, 0.1, 0.2], [0.6, 0.1, 0.1], [0.5, 0.5, 0.5], [0.8, 0.2, 0.7]])
    m = target_metrics(TOPICS, multi, encoded["topics"])  # rows 0, 1, 3; row 1 wrongly says billing
    truth = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 1]])
    p = multi[[0, 1, 3]]
    assert m["valid_loss"] == pytest.approx(-(truth * np.log(p) + (1 - truth) * np.log(1 - p)).mean())
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((0.8 + 1.0) / 2)  # billing: tp 2 fp 1; refund: tp 1; shipping absent
    nobody = encode_labels([{"sentiment": ("neutral",)}], TARGETS)
    assert all_metrics(TARGETS, {"sentiment": single[:1], "topics": multi[:1]}, nobody).keys() == {"sentiment"}


# --- training ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data():
    return synthetic(240, seed=1), synthetic(120, seed=2)


@pytest.fixture(scope="module")
def trained(data):
    (x, labels), (vx, vlabels) = data
    checkpoints, progress = [], []
    head = train_head(x, labels, TARGETS, ClassifierHyper(), "multilingual-e5-small", "query",
                      valid=(vx, vlabels), on_progress=lambda *a: progress.append(a),
                      on_checkpoint=checkpoints.append)
    return head, checkpoints, progress


def test_a_small_labelled_set_is_learnt(data, trained):
    (_, _), (vx, vlabels) = data
    head, checkpoints, progress = trained
    total = progress[-1][1]
    assert [p[0] for p in progress] == list(range(1, total + 1)) and total == 300  # the minimum default steps
    assert len(checkpoints) == 10 and checkpoints[-1].step == total
    first, last = checkpoints[0], checkpoints[-1]
    assert last.valid_loss < first.valid_loss and last.train_loss < progress[0][2]
    metrics = head.metadata["metrics"]
    assert metrics == last.targets and set(metrics) == {"sentiment", "topics"}
    assert metrics["sentiment"]["accuracy"] >= 0.9 and metrics["sentiment"]["macro_f1"] >= 0.9
    assert metrics["topics"]["accuracy"] >= 0.8 and metrics["topics"]["macro_f1"] >= 0.9
    assert last.mean_accuracy == pytest.approx(np.mean([m["accuracy"] for m in metrics.values()]))
    # The served head reads raw vectors (the standardization is folded in): the same metrics from numpy.
    again = all_metrics(TARGETS, head.probabilities(vx), encode_labels(vlabels, TARGETS))
    for name in metrics:
        assert again[name] == pytest.approx(metrics[name], abs=1e-4)
    # Benign rows (empty topic list) get every topic below 0.5 most of the time.
    empty = [i for i, lab in enumerate(vlabels) if lab["topics"] == ()]
    assert (head.probabilities(vx[empty])["topics"].max(axis=1) < 0.5).mean() >= 0.8
    scores = head.scores(vx[:1])[0]
    assert set(scores["sentiment"]) == set(SENTIMENT.labels) and sum(scores["sentiment"].values()) == pytest.approx(1)
    assert (head.embedding_model, head.input_type, head.dimension) == ("multilingual-e5-small", "query", 96)


def test_the_same_seed_gives_the_same_head(data, trained, tmp_path):
    (x, labels), _ = data
    again = train_head(x, labels, TARGETS, ClassifierHyper(), "multilingual-e5-small", "query")
    head = trained[0]
    for name in head.weights:
        np.testing.assert_array_equal(again.weights[name], head.weights[name])
        np.testing.assert_array_equal(again.biases[name], head.biases[name])
    hyper = ClassifierHyper(hidden=16, training_steps=40, seed=3)
    one, two = (train_head(x, labels, TARGETS, hyper, "e5") for _ in range(2))
    np.testing.assert_array_equal(one.hidden_weight, two.hidden_weight)
    other = train_head(x, labels, TARGETS, ClassifierHyper(hidden=16, training_steps=40, seed=4), "e5")
    assert not np.array_equal(one.hidden_weight, other.hidden_weight)
    one.save(tmp_path / "head.npz")
    loaded = ClassifierHead.load(tmp_path / "head.npz")
    np.testing.assert_allclose(loaded.probabilities(x[:5])["topics"], one.probabilities(x[:5])["topics"])
    assert loaded.metadata["hyperparameters"]["hidden"] == 16 and loaded.metadata["training_steps"] == 40


def test_a_linear_head_learns_too(data):
    (x, labels), (vx, vlabels) = data
    head = train_head(x, labels, TARGETS, ClassifierHyper(hidden=None, epochs=20), "e5", valid=(vx, vlabels))
    assert head.hidden_weight is None
    assert head.metadata["training_steps"] == 20 * 240 // 32 and head.metadata["epochs"] == pytest.approx(20)
    metrics = head.metadata["metrics"]
    assert metrics["sentiment"]["accuracy"] >= 0.85 and metrics["topics"]["macro_f1"] >= 0.85
    again = all_metrics(TARGETS, head.probabilities(vx), encode_labels(vlabels, TARGETS))  # folded as well
    assert again["topics"] == pytest.approx(metrics["topics"], abs=1e-4)


def test_steps_by_default_epochs_or_given():
    assert ClassifierHyper().total_steps(10) == 300  # a few examples: the minimum
    assert ClassifierHyper().total_steps(1000) == 30 * 32  # 30 epochs of 32 batches
    assert ClassifierHyper().total_steps(10_000_000) == 20_000  # bounded
    assert ClassifierHyper(epochs=2).total_steps(10) == 2 and ClassifierHyper(epochs=2).epochs_for(2, 10) == 2
    assert ClassifierHyper(epochs=0.5).total_steps(640) == 10
    assert ClassifierHyper(training_steps=7).total_steps(5) == 7
    assert ClassifierHyper().every(300) == 30 and ClassifierHyper(checkpoint_every=7).every(300) == 7


def test_targets_an_example_does_not_label_are_not_trained_on_it(data):
    (x, labels), _ = data
    # Half the examples say nothing of the sentiment: it is still learnt from the others.
    partial = [lab if i % 2 else {"topics": lab["topics"]} for i, lab in enumerate(labels)]
    head = train_head(x, partial, TARGETS, ClassifierHyper(training_steps=150), "e5", valid=(x[::2], labels[::2]))
    assert head.metadata["metrics"]["sentiment"]["accuracy"] >= 0.85
    with pytest.raises(ValueError, match="no training example labels target 'sentiment'"):
        train_head(x[:4], [{"topics": ()}] * 4, TARGETS, ClassifierHyper(training_steps=2), "e5")
    with pytest.raises(ValueError, match="3 feature rows for 4 label sets"):
        train_head(x[:3], labels[:4], TARGETS, ClassifierHyper(training_steps=2), "e5")


# --- job.json and the trainer process ----------------------------------------------------------

WORDS = {"billing": ["invoice", "charged", "payment", "bill"], "shipping": ["parcel", "delivery", "courier", "shipped"],
         "refund": ["refund", "money", "back", "return"]}
MOODS = {"positive": ["great", "thanks", "love", "perfect"], "negative": ["awful", "angry", "terrible", "worst"],
         "neutral": ["question", "hello", "please", "wondering"]}


def bag_of_words(texts: list[str], dimension: int = 128) -> np.ndarray:
    """What the gateway's embedding stage stands in for: a hashed bag of words, unit length."""
    out = np.zeros((len(texts), dimension), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            out[row, zlib.crc32(word.encode()) % dimension] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


def text_lines(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        mood = ("positive", "negative", "neutral")[i % 3]
        topics = [] if i % 4 == 0 else sorted({("billing", "shipping", "refund")[int(t)]
                                               for t in rng.integers(3, size=int(rng.integers(1, 3)))})
        words = [str(rng.choice(MOODS[mood]))] + [str(rng.choice(WORDS[t])) for t in topics] + ["the", "my"]
        lines.append({"text": " ".join(str(w) for w in rng.permutation(words)),
                      "labels": {"sentiment": mood, "topics": topics}})
    return lines


def classifier_job(directory, train: list, valid: list | None = None, **fields):
    directory.mkdir(parents=True, exist_ok=True)
    job = {
        "job_type": "classifier", "base_gguf": None, "cache_dir": str(directory / "cache"),
        "training_files": [{"file_id": "train-0", "path": str(write_lines(directory / "train.jsonl", train)),
                            "weight": 1.0}],
        "validation_files": ([{"file_id": "valid", "path": str(write_lines(directory / "valid.jsonl", valid))}]
                             if valid else []),
        # Sparse bag-of-words features (a few words per text) learn slower than dense embeddings: 1e-2.
        "hyperparameters": {"learning_rate": 1e-2, "weight_decay": 0.1, "warmup_fraction": 0.05, "seq_len": None},
        "invalid_sample_skip_percentage": 0.0, "seed": 0, "checkpoint_every": None, "threads": 2,
        "classifier": {"targets": [t.as_dict() for t in TARGETS], "embedding_model": "multilingual-e5-small",
                       "input_type": "query", "dimension": 128, "examples_path": str(directory / "examples.jsonl"),
                       "features_path": str(directory / "features.npy")},
    }
    for key, value in fields.items():
        (job["classifier"] if key in job["classifier"] else job)[key] = value
    (directory / "job.json").write_text(json.dumps(job))
    return directory / "job.json"


def test_classifier_job_file_is_checked():
    from plateforme.training.job import JobError, parse_job

    def job(**changes):
        raw = json.loads(classifier_job_text())
        for key, value in changes.items():
            (raw["classifier"] if key in raw["classifier"] else raw)[key] = value
        return parse_job(raw)

    parsed = job(hyperparameters={"epochs": 3, "hidden": 8, "seq_len": 512}, seed=7)
    assert parsed.job_type == "classifier" and parsed.base_gguf is None
    assert parsed.classifier.targets == TARGETS and parsed.classifier.dimension == 128
    assert (parsed.classifier.hyper.epochs, parsed.classifier.hyper.hidden, parsed.classifier.hyper.seed) == (3, 8, 7)
    assert parsed.classifier.hyper.learning_rate == DEFAULT_LEARNING_RATE  # the head's default, not LoRA's 1e-4
    assert job().classifier.hyper.hidden == DEFAULT_HIDDEN
    assert job(hyperparameters={"hidden": 0}).classifier.hyper.hidden is None  # a linear head
    for changes, message in [
        ({"job_type": "regression"}, "job_type must be"),
        ({"classifier": None}, "needs a classifier object"),
        ({"targets": []}, "non-empty list of targets"),
        ({"targets": [{"name": "a", "labels": ["x", "x"]}]}, "distinct strings"),
        ({"targets": [{"name": "a", "labels": ["x"], "loss_function": "ranking"}]}, "loss_function must be one of"),
        ({"targets": [{"name": "a", "labels": ["x"], "weight": 0}]}, "every weight is 0"),
        ({"targets": [TARGETS[0].as_dict()] * 2}, "distinct"),
        ({"dimension": None}, "dimension is missing"),
        ({"input_type": "passage"}, "input_type must be one of"),
        ({"hyperparameters": {"training_steps": 5, "epochs": 1}}, "not both"),
        ({"hyperparameters": {"learning_rate": 2}}, "learning_rate must be between"),
    ]:
        with pytest.raises(JobError, match=message):
            job(**changes)


def classifier_job_text() -> str:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as directory:
        return classifier_job(Path(directory), text_lines(3, 0)).read_text()


def test_validate_then_run_as_the_gateway_runs_them(tmp_path):
    from training_jobs import run_trainer, trainer_args

    train, valid = text_lines(150, seed=1), text_lines(45, seed=2)
    bad = [{"text": "hi", "labels": {"sentiment": "angry"}}, "{nope"]
    job = classifier_job(tmp_path, train[:100] + bad + train[100:], valid, invalid_sample_skip_percentage=0.05)
    rc, events, stderr = run_trainer(trainer_args("validate", job), timeout=120)
    assert rc == 0, stderr
    assert [e["event"] for e in events] == ["validated"]
    report = events[0]["report"]
    assert (report["lines"], report["valid_lines"], report["errors_total"]) == (197, 195, 2)
    assert report["errors"] == [
        {"file_id": "train-0", "line": 101, "reason": report["errors"][0]["reason"]},
        {"file_id": "train-0", "line": 102, "reason": report["errors"][1]["reason"]}]
    assert "unknown label 'angry'" in report["errors"][0]["reason"] and "JSON" in report["errors"][1]["reason"]
    assert report["label_counts"]["sentiment"] == {"positive": 50, "negative": 50, "neutral": 50}
    assert report["labelled_examples"] == {"sentiment": 150, "topics": 150}
    assert sum(report["label_counts"]["topics"].values()) > 0
    assert (report["train_examples"], report["valid_examples"], report["training_steps"]) == (150, 45, 300)
    pairs = read_examples_file(tmp_path / "examples.jsonl")
    assert [p[1] for p in pairs] == ["train"] * 150 + ["valid"] * 45
    assert pairs[0][0].text == train[0]["text"] and pairs[-1][0].text == valid[-1]["text"]

    # The gateway's part: one vector per line of examples.jsonl.
    np.save(tmp_path / "features.npy", bag_of_words([p[0].text for p in pairs]))
    rc, events, stderr = run_trainer(trainer_args("run", job, tmp_path / "train"), timeout=300)
    assert rc == 0, stderr
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "succeeded" and kinds.count("checkpoint") == 10 and "validated" not in kinds
    progress = [e for e in events if e["event"] == "progress"]
    assert progress[-1]["step"] == progress[-1]["total_steps"] == 300
    checkpoints = [e for e in events if e["event"] == "checkpoint"]
    assert [c["step"] for c in checkpoints] == list(range(30, 301, 30))
    last = checkpoints[-1]
    assert set(last["targets"]) == {"sentiment", "topics"} and last["valid_loss"] < checkpoints[0]["valid_loss"]
    assert last["targets"]["sentiment"]["accuracy"] >= 0.9 and last["targets"]["topics"]["macro_f1"] >= 0.9
    assert last["valid_mean_token_accuracy"] == pytest.approx(
        (last["targets"]["sentiment"]["accuracy"] + last["targets"]["topics"]["accuracy"]) / 2)
    head = ClassifierHead.load(events[-1]["head"])
    assert events[-1]["head"] == str((tmp_path / "train" / "head.npz").resolve())
    assert head.metadata["metrics"] == last["targets"] and head.dimension == 128
    scores = head.scores(bag_of_words(["the thanks my parcel", "awful the my invoice"]))  # as the lines are made
    assert max(scores[0]["sentiment"], key=scores[0]["sentiment"].get) == "positive"
    assert scores[0]["topics"]["shipping"] > 0.5 > scores[0]["topics"]["billing"]
    assert max(scores[1]["sentiment"], key=scores[1]["sentiment"].get) == "negative"
    assert scores[1]["topics"]["billing"] > 0.5 > scores[1]["topics"]["shipping"]


def test_bad_data_fails_validation_and_bad_features_fail_the_run(tmp_path):
    from training_jobs import run_trainer, trainer_args

    lines = text_lines(20, seed=3) + [{"text": "x", "labels": {"topics": ["weather"]}}]
    job = classifier_job(tmp_path / "strict", lines)  # 1 bad line of 21, none tolerated
    rc, events, stderr = run_trainer(trainer_args("validate", job), timeout=120)
    assert rc == 3 and [e["event"] for e in events] == ["failed_validation"], stderr
    assert events[0]["report"]["errors"][0]["line"] == 21 and not (tmp_path / "strict" / "examples.jsonl").exists()

    unlabelled = [{"text": f"hello {i}", "labels": {"topics": []}} for i in range(5)]
    rc, events, stderr = run_trainer(trainer_args("validate", classifier_job(tmp_path / "none", unlabelled)))
    assert rc == 1 and "no valid training line labels target(s) 'sentiment'" in stderr.strip().splitlines()[-1]

    job = classifier_job(tmp_path / "run", text_lines(10, seed=4))
    assert run_trainer(trainer_args("validate", job))[0] == 0
    np.save(tmp_path / "run" / "features.npy", np.zeros((9, 128), dtype=np.float32))  # one row short
    rc, events, stderr = run_trainer(trainer_args("run", job, tmp_path / "run" / "train"))
    assert rc == 1 and events == []
    assert "not float32 (10, 128)" in stderr.strip().splitlines()[-1]
