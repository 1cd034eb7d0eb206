"""Classifier training data (Mistral's format): read and checked line by line, bad lines listed with why.

One JSON object per line:

    {"text": "...", "labels": {"sentiment": "positive"}}                    a single_class target
    {"text": "...", "labels": {"moderation": ["violence_and_threats"]}}     a multi_class target
    {"text": "...", "labels": {"moderation": []}}                           multi_class, none of the labels
    {"messages": [{"role": "user", "content": "..."}, ...], "labels": {...}} a conversation

A line may label only some of the job's targets: the others are not trained on it (for a
multi_class target, an absent key is "unknown", an empty list is "none of the labels").
Conversations are rendered to text as the gateway renders them at classification time
(`plateforme.classifiers.conversation_text`). Lines holding only whitespace are ignored.

Pure Python (no torch): the gateway imports it too. Also the examples file that `validate`
writes and the gateway embeds: one `{"text", "labels": {target: [labels]}, "split"}` per line.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from plateforme.classifiers.conversation_text import ConversationInvalid, conversation_text
from plateforme.classifiers.head import ClassifierTarget

SPLITS = ("train", "valid")


@dataclass(frozen=True)
class ClassifierExample:
    text: str
    labels: dict[str, tuple[str, ...]]  # target name -> its labels (one for single_class); absent: not labelled


class BadClassifierLine(ValueError):
    """A line that cannot be trained on; the message says why and what to change."""


def _names(values: Iterable[str]) -> str:
    return ", ".join(repr(v) for v in values)


def _conversation_text(messages) -> str:
    try:
        return conversation_text(messages)
    except ConversationInvalid as exc:
        raise BadClassifierLine(str(exc)) from None


def _text(raw: dict) -> str:
    has_text, has_messages = "text" in raw, "messages" in raw
    if has_text and has_messages:
        raise BadClassifierLine("give either text or messages, not both")
    if has_messages:
        return _conversation_text(raw["messages"])
    if not has_text:
        raise BadClassifierLine('the line has no text; give {"text": "...", "labels": {...}} '
                                '(or "messages" for a conversation)')
    text = raw["text"]
    if not isinstance(text, str) or not text.strip():
        raise BadClassifierLine("text must be a non-empty string")
    return text


def _target_labels(target: ClassifierTarget, value) -> tuple[str, ...]:
    if target.loss_function == "single_class":
        if isinstance(value, list):
            raise BadClassifierLine(f"target {target.name!r} is single_class: give its one label as a string, "
                                    f"not a list (got {value!r})")
        chosen = [value]
    else:
        if not isinstance(value, list):
            raise BadClassifierLine(f"target {target.name!r} is multi_class: give a list of labels "
                                    f"(an empty list for none of them), not {value!r}")
        chosen = list(dict.fromkeys(value)) if all(isinstance(v, str) for v in value) else value
    for label in chosen:
        if not isinstance(label, str):
            raise BadClassifierLine(f"target {target.name!r}: a label must be a string, got {label!r}")
        if label not in target.labels:
            raise BadClassifierLine(f"unknown label {label!r} for target {target.name!r}; its labels are "
                                    f"{_names(target.labels)}")
    return tuple(chosen)


def parse_classifier_line(line: str, targets: Sequence[ClassifierTarget]) -> ClassifierExample:
    """One line's example; BadClassifierLine says what is wrong with it."""
    try:
        raw = json.loads(line)
    except ValueError as exc:
        raise BadClassifierLine(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise BadClassifierLine('each line must be a JSON object like {"text": "...", "labels": {...}}')
    text = _text(raw)
    labels = raw.get("labels")
    by_name = {t.name: t for t in targets}
    if not isinstance(labels, dict) or not labels:
        raise BadClassifierLine(f"labels must be a non-empty object mapping targets to their label(s); the "
                                f"job's targets are {_names(by_name)}")
    out = {}
    for name, value in labels.items():
        if name not in by_name:
            raise BadClassifierLine(f"unknown target {name!r}; the job's targets are {_names(by_name)}")
        out[name] = _target_labels(by_name[name], value)
    return ClassifierExample(text, out)


def read_classifier_examples(path: Path, targets: Sequence[ClassifierTarget]
                             ) -> tuple[list[ClassifierExample], list[dict]]:
    """The examples of the JSONL file at `path`, and its bad lines as [{"line": n (1-based), "reason"}].
    OSError when the file cannot be read."""
    examples, errors = [], []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise BadClassifierLine("not UTF-8 text") from None
                examples.append(parse_classifier_line(line, targets))
            except BadClassifierLine as exc:
                errors.append({"line": number, "reason": str(exc)})
    return examples, errors


def label_counts(examples: Iterable[ClassifierExample], targets: Sequence[ClassifierTarget]) -> dict:
    """Per target: how many examples carry each label, and how many label the target at all
    ({"labelled": n, "labels": {label: count}}; for multi_class, labelled - sum = examples with none)."""
    counts = {t.name: {"labelled": 0, "labels": dict.fromkeys(t.labels, 0)} for t in targets}
    for example in examples:
        for name, labels in example.labels.items():
            counts[name]["labelled"] += 1
            for label in labels:
                counts[name]["labels"][label] += 1
    return counts


def write_examples_file(path: Path, examples: Iterable[tuple[ClassifierExample, str]]) -> int:
    """Write (example, split) pairs, one JSON object per line; the number written."""
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for example, split in examples:
            if split not in SPLITS:
                raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
            labels = {name: list(labels) for name, labels in example.labels.items()}
            handle.write(json.dumps({"text": example.text, "labels": labels, "split": split}, ensure_ascii=False)
                         + "\n")
            count += 1
    return count


def read_examples_file(path: Path) -> list[tuple[ClassifierExample, str]]:
    """The (example, split) pairs `write_examples_file` wrote, in order."""
    pairs = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            raw = json.loads(line)
            labels = {name: tuple(values) for name, values in raw["labels"].items()}
            pairs.append((ClassifierExample(raw["text"], labels), raw["split"]))
    return pairs
