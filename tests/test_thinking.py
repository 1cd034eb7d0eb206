"""Reasoning models and predicted outputs, as logic: the incremental thinking splitter, thinking
deltas, the wire shapes of thinking, reasoning detection from GGUF chat templates, the refusal of
reasoning fields on models that cannot reason, and what `prediction` / `reasoning_effort` become
in engine payloads. No server: the live paths are in test_reasoning_remote.py."""

import asyncio

import pytest
from pydantic import ValidationError

from spec_schema import validate, validate_response

from plateforme.api.completion_shapes import chunk_choice, completion_response
from plateforme.api.schemas.chat import ChatCompletionRequest
from plateforme.chat.answer_parts import AnswerParts, split_answer
from plateforme.chat.engine_payload import engine_payload
from plateforme.chat.errors import InvalidChatRequest
from plateforme.chat.reasoning import with_reasoning
from plateforme.chat.remote_payload import remote_payload
from plateforme.chat.thinking import ThinkingSplitter
from plateforme.chat.types import ChatRequest, Choice, Completion, Delta, Usage
from plateforme.models.reasoning import is_reasoning, template_reasons
from plateforme.models.registry import ModelRegistry
from plateforme.models.spec import ModelSpec

USER = [{"role": "user", "content": "hi"}]


def _split(pieces: list[str]) -> list[tuple[str, str]]:
    splitter = ThinkingSplitter()
    parts = []
    for piece in pieces:
        parts += splitter.feed(piece)
    parts += splitter.finish()
    merged: list[tuple[str, str]] = []
    for kind, text in parts:  # pieces of one kind, however they were cut
        if merged and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + text)
        else:
            merged.append((kind, text))
    return merged


@pytest.mark.parametrize("opening,closing", [("<think>", "</think>"), ("[THINK]", "[/THINK]")])
def test_markers_split_across_pieces_at_every_position(opening, closing):
    text = f"{opening}I should add.{closing}\n\nIt is 4."
    for cut in range(1, len(text)):
        for cut2 in range(cut, len(text)):
            pieces = [text[:cut], text[cut:cut2], text[cut2:]]
            assert _split(pieces) == [("thinking", "I should add."), ("text", "It is 4.")], pieces


def test_text_without_markers_streams_through_and_holds_at_most_a_marker_prefix():
    splitter = ThinkingSplitter()
    assert splitter.feed("a < b and [x]") == [("text", "a < b and [x]")]
    assert splitter.feed(" then <th") == [("text", " then ")]  # "<th" may start <think>
    assert splitter.feed("ree>") == [("text", "<three>")]
    assert splitter.feed("[THI") == []
    assert splitter.finish() == [("text", "[THI")]  # a marker that never completed is text


def test_unclosed_thinking_at_the_end_is_thinking():
    assert _split(["<think>still going", " on </thi"]) == [("thinking", "still going on </thi")]


def test_several_blocks_and_text_before_thinking():
    assert _split(["Sure. <think>a</think> b [THINK]c[/THINK]d"]) == [
        ("text", "Sure. "), ("thinking", "a"), ("text", "b "), ("thinking", "c"), ("text", "d")]
    # a closing marker of the other kind does not end a block
    assert _split(["<think>x[/THINK]y</think>z"]) == [("thinking", "x[/THINK]y"), ("text", "z")]


def test_answer_parts_map_reasoning_content_and_carry_logprobs():
    plain = AnswerParts(0, reasoning=False)
    # a model that does not reason keeps its markers as text, but a server's reasoning_content is thinking
    assert [(d.thinking, d.content) for d in plain.deltas("<think>x</think>", "why")] == [
        ("why", None), (None, "<think>x</think>")]
    parts = AnswerParts(2, reasoning=True)
    held = parts.deltas("<thi", logprobs=[{"token": "<thi", "logprob": -0.1}])
    assert [(d.index, d.content, d.logprobs) for d in held] == [(2, "", [{"token": "<thi", "logprob": -0.1}])]
    assert [(d.thinking, d.content) for d in parts.deltas("nk>hm</think>ok")] == [("hm", None), (None, "ok")]
    assert parts.finish() == []
    assert split_answer("<think>t</think>\n answer", reasoning=True) == ("t", "answer")


def test_wire_shapes_of_thinking():
    assert chunk_choice(Delta(0, thinking="hm"))["delta"]["content"] == [
        {"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]}]
    assert chunk_choice(Delta(0, content="ok"))["delta"]["content"] == "ok"
    result = Completion([Choice(0, "4", "stop", thinking="2+2"), Choice(1, "plain", "stop")], Usage(3, 4))
    body = completion_response("cmpl-1", "m", 1, result).model_dump(exclude_none=True)
    assert body["choices"][0]["message"]["content"] == [
        {"type": "thinking", "thinking": [{"type": "text", "text": "2+2"}], "closed": True},
        {"type": "text", "text": "4"}]
    assert body["choices"][1]["message"]["content"] == "plain"
    validate_response("/v1/chat/completions", "post", 200, body)  # Mistral's spec: ThinkChunk, TextChunk
    validate(chunk_choice(Delta(0, thinking="hm"))["delta"], "DeltaMessage")


def test_request_fields_are_validated_and_carried():
    base = {"model": "m", "messages": USER}
    req = ChatCompletionRequest(**base, prediction={"type": "content", "content": "old code"},
                                reasoning_effort="high", prompt_mode="reasoning").to_chat_request()
    assert (req.prediction, req.reasoning_effort, req.prompt_mode) == ("old code", "high", "reasoning")
    assert ChatCompletionRequest(**base, prediction={"type": "content"}).to_chat_request().prediction is None
    for bad in ({"prediction": {"type": "diff", "content": "x"}}, {"prediction": {"content": 3}},
                {"reasoning_effort": "extreme"}, {"prompt_mode": "thinking"}):
        with pytest.raises(ValidationError):
            ChatCompletionRequest(**base, **bad)
    # an answer sent back with its thinking: the thinking is not shown to the model again
    back = ChatCompletionRequest(**base | {"messages": USER + [
        {"role": "assistant", "content": [{"type": "thinking", "thinking": [{"type": "text", "text": "t"}]},
                                          {"type": "text", "text": "hello"}]}, {"role": "user", "content": "more"}]})
    assert back.to_chat_request().messages[1] == {"role": "assistant", "content": "hello"}


def _gguf_with_template(path, template: str | None):
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    if template is not None:
        writer.add_chat_template(template)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_reasoning_is_declared_or_detected_from_the_chat_template(tmp_path):
    assert template_reasons("{% if x %}<think>\n{% endif %}") and template_reasons("[THINK]")
    assert not template_reasons("{{ messages }}") and not template_reasons(None)
    default = ModelRegistry.from_file(None).specs[0]
    assert is_reasoning(default) is False  # SmolLM2's template has no thinking
    assert is_reasoning(default.model_copy(update={"reasoning": True})) is True
    thinker = _gguf_with_template(tmp_path / "thinker.gguf", "{{ '<think>' }}{{ messages }}")
    plain = _gguf_with_template(tmp_path / "plain.gguf", None)
    assert is_reasoning(ModelSpec(name="thinker", path=str(thinker))) is True
    assert is_reasoning(ModelSpec(name="plain", path=str(plain))) is False
    assert is_reasoning(ModelSpec(name="remote", engine="openai", base_url="http://h/v1")) is False
    assert is_reasoning(ModelSpec(name="missing", path=str(tmp_path / "none.gguf"))) is False


def test_reasoning_fields_on_a_model_that_cannot_reason_are_refused():
    spec = ModelSpec(name="remote", engine="openai", base_url="http://h/v1")
    for field in ("reasoning_effort", "prompt_mode"):
        req = ChatRequest(model="remote", messages=USER, **{field: "reasoning" if field == "prompt_mode" else "low"})
        with pytest.raises(InvalidChatRequest) as caught:
            asyncio.run(with_reasoning(req, spec))
        assert caught.value.param == field and "'remote' is not a reasoning model" in str(caught.value)
    marked = asyncio.run(with_reasoning(ChatRequest(model="remote", messages=USER, reasoning_effort="none"),
                                        spec.model_copy(update={"reasoning": True})))
    assert marked.reasoning
    assert engine_payload(marked, 0.3, None)["chat_template_kwargs"] == {"enable_thinking": False}
    assert "chat_template_kwargs" not in engine_payload(ChatRequest(model="m", messages=USER), 0.3, None)


def test_remote_payload_passes_prediction_and_reasoning_effort_through():
    spec = ModelSpec(name="remote", engine="openai", base_url="http://h/v1", reasoning=True)
    payload = remote_payload(ChatRequest(model="remote", messages=USER, prediction="old", reasoning_effort="low"), spec)
    assert payload["prediction"] == {"type": "content", "content": "old"} and payload["reasoning_effort"] == "low"
    bare = remote_payload(ChatRequest(model="remote", messages=USER), spec)
    assert "prediction" not in bare and "reasoning_effort" not in bare
