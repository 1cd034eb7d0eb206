"""The trainer's data side: `validate` reports, assistant-only masks, tool rendering, the step plan."""

import json
import re
from collections import Counter

import pytest

from plateforme.chat import generic_tools
from plateforme.training.base_model import load_tokenizer
from plateforme.training.chat_rendering import tokenize_conversation
from plateforme.training.conversation_checks import BadLine, check_line
from plateforme.training.schedule import BATCH_EXAMPLES, make_plan
from training_jobs import FACTS, SYSTEM, default_gguf, qa_line, run_trainer, trainer_args, write_job

GOOD = [qa_line(q, a) for q, a in FACTS]
BAD = [
    ("not json at all", "not valid JSON"),
    ([1, 2], "JSON object"),
    ({"messages": []}, "no messages"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "role must be one of"),
    ({"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "x"}]}, "empty content"),
    ({"messages": [{"role": "user", "content": "hi", "weight": 1}, {"role": "assistant", "content": "x"}]},
     "only allowed on assistant"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "weight": 0.5}]},
     "weight must be 0 or 1"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "weight": 0}]},
     "no trainable assistant"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}, "not valid JSON"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "nope", "content": "1"},
                   {"role": "assistant", "content": "x"}]}, "without a matching call"),
    (qa_line("Tell me everything. " * 40, "No."), "more than seq_len 128"),
]


@pytest.fixture(scope="module")
def cache_dir(training_cache_dir):
    return training_cache_dir


@pytest.fixture(scope="module")
def tokenizer(cache_dir):
    return load_tokenizer(cache_dir, default_gguf())


def test_validate_reports_each_bad_line_and_applies_the_skip_share(tmp_path, cache_dir):
    lines = GOOD * 6 + [line for line, _ in BAD]  # with 2 validation lines: 11 bad of 37, a share of 0.30
    tolerant = write_job(tmp_path / "tolerant", cache_dir, lines, valid=GOOD[:2], invalid_sample_skip_percentage=0.35)
    rc, events, stderr = run_trainer(trainer_args("validate", tolerant))
    assert rc == 0, stderr
    assert [e["event"] for e in events] == ["validated"]
    report = events[0]["report"]
    assert (report["lines"], report["valid_lines"], report["errors_total"]) == (37, 26, 11)
    for error, (_, reason) in zip(report["errors"], BAD, strict=True):
        assert error["file_id"] == "train-0" and reason in error["reason"], error
    assert [e["line"] for e in report["errors"]] == list(range(25, 36))
    assert re.search(r"is \d+ tokens long", report["errors"][-1]["reason"])  # says how long it is
    assert report["training_steps"] == 4 and report["train_tokens"] > 0
    assert report["data_tokens"] > report["train_tokens_per_step"] > 0

    strict = write_job(tmp_path / "strict", cache_dir, lines, invalid_sample_skip_percentage=0.25)
    rc, events, _ = run_trainer(trainer_args("validate", strict))
    assert rc == 3
    assert [e["event"] for e in events] == ["failed_validation"]
    assert events[0]["report"]["errors_total"] == 11


def test_only_trained_assistant_turns_are_targets(tokenizer):
    line = {"messages": [SYSTEM, {"role": "user", "content": "One?"},
                         {"role": "assistant", "content": "Not this.", "weight": 0},
                         {"role": "user", "content": "Two?"}, {"role": "assistant", "content": "This one."},
                         {"role": "user", "content": "Three?"}]}
    example = tokenize_conversation(tokenizer, check_line(json.dumps(line)))
    targets = example.ids[example.trained].tolist()
    assert tokenizer.decode(targets) == "This one.<|im_end|>"
    rendered = tokenizer.decode(example.ids.tolist())
    assert "Not this." in rendered and "Two?" in rendered
    assert "Three?" not in rendered  # nothing after the last trained turn is kept
    assert example.ids[0] != example.ids[1]  # no doubled BOS


def test_tool_conversations_are_rendered_as_the_gateway_serves_them(tokenizer):
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    line = {"tools": tools, "messages": [
        {"role": "user", "content": "Weather in Oslo?"}, {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "name": "weather", "content": "4C"},
        {"role": "assistant", "content": "It is 4C."}]}
    example = tokenize_conversation(tokenizer, check_line(json.dumps(line)))
    text = tokenizer.decode(example.ids.tolist())
    assert generic_tools.system_prompt(tools, must_call=False) in text
    assert "Result of weather (call c1): 4C" in text
    assert tokenizer.decode(example.ids[example.trained].tolist()) == (
        '{"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]}<|im_end|>'
        '{"content": "It is 4C."}<|im_end|>')
    with pytest.raises(BadLine, match="not in this line's tools"):
        check_line(json.dumps({"tools": tools, "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{**call, "function": {"name": "other", "arguments": "{}"}}]}]}))


def test_plan_weights_files_and_groups_lengths():
    lengths = [10 + (i * 37) % 90 for i in range(200)]
    files = [0] * 100 + [1] * 100
    plan = make_plan(lengths, files, [2.0, 1.0], training_steps=None, epochs=3, seed=1)
    seen = Counter(files[i] for step in plan.steps for i in step)
    assert 1.8 < seen[0] / seen[1] < 2.2  # weight 2 is sampled twice as often
    assert abs(plan.epochs - 3) < 0.1  # an epoch holds about the data's tokens
    assert all(1 <= len(step) <= BATCH_EXAMPLES for step in plan.steps)
    # Length grouping: a batch's padded size is close to its real size.
    padded = sum(len(step) * max(lengths[i] for i in step) for step in plan.steps)
    assert padded < 1.1 * plan.train_tokens
    again = make_plan(lengths, files, [2.0, 1.0], training_steps=None, epochs=3, seed=1)
    assert again.fingerprint() == plan.fingerprint()
    fixed = make_plan(lengths, files, [1.0, 1.0], training_steps=70, epochs=None, seed=1)
    assert fixed.total_steps == 70 and sorted(i for step in fixed.steps[:25] for i in step) == list(range(200))
