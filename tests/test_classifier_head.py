"""The classifier head's numpy runtime: probabilities, the file format, and its refusals."""

import numpy as np
import pytest

from plateforme.classifiers.head import ClassifierHead, ClassifierTarget, HeadFormatError


def _head(hidden: bool) -> ClassifierHead:
    rng = np.random.default_rng(0)
    inputs = 5 if hidden else 8
    targets = (ClassifierTarget("sentiment", ("neg", "pos")),
               ClassifierTarget("topics", ("a", "b", "c"), 2.0, "multi_class"))
    return ClassifierHead(
        targets, "e5", 8,
        {"sentiment": rng.normal(size=(inputs, 2)).astype(np.float32),
         "topics": rng.normal(size=(inputs, 3)).astype(np.float32)},
        {"sentiment": rng.normal(size=2).astype(np.float32), "topics": rng.normal(size=3).astype(np.float32)},
        hidden_weight=rng.normal(size=(8, 5)).astype(np.float32) if hidden else None,
        hidden_bias=rng.normal(size=5).astype(np.float32) if hidden else None,
        metadata={"note": "x"})


@pytest.mark.parametrize("hidden", [False, True])
def test_scores_softmax_single_class_and_sigmoid_multi_class(hidden, tmp_path):
    head = _head(hidden)
    x = np.random.default_rng(1).normal(size=(4, 8)).astype(np.float32)
    rows = head.scores(x)
    assert len(rows) == 4
    for row in rows:
        assert abs(sum(row["sentiment"].values()) - 1) < 1e-6
        assert set(row["topics"]) == {"a", "b", "c"} and all(0 < p < 1 for p in row["topics"].values())
    h = np.maximum(x @ head.hidden_weight + head.hidden_bias, 0) if hidden else x
    expected = 1 / (1 + np.exp(-(h @ head.weights["topics"] + head.biases["topics"])))
    assert np.allclose([[r["topics"][k] for k in "abc"] for r in rows], expected, atol=1e-6)
    head.save(tmp_path / "head.npz")
    again = ClassifierHead.load(tmp_path / "head.npz")
    assert again.targets == head.targets and again.metadata == {"note": "x"}
    assert again.scores(x) == rows


def test_refusals(tmp_path):
    head = _head(False)
    with pytest.raises(ValueError, match=r"\(8,\) vectors"):
        head.scores(np.zeros((2, 7), dtype=np.float32))
    (tmp_path / "bad.npz").write_bytes(b"not a head")
    with pytest.raises(HeadFormatError, match="cannot read"):
        ClassifierHead.load(tmp_path / "bad.npz")
    with pytest.raises(HeadFormatError, match="distinct labels"):
        ClassifierHead((ClassifierTarget("t", ("a", "a")),), "e5", 8, {"t": np.zeros((8, 2))}, {"t": np.zeros(2)})
    with pytest.raises(HeadFormatError, match="weights must be"):
        ClassifierHead((ClassifierTarget("t", ("a", "b")),), "e5", 8, {"t": np.zeros((7, 2))}, {"t": np.zeros(2)})
