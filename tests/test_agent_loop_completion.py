"""How POST /v1/agents/completions tells a conversation-loop response as a chat completion, without
a server: chat messages become the loop's history and inputs, and the loop's items become
chat.completion.chunk events (the items are made here by hand, as ConversationLoop.run yields
them; the live route is tested in test_agents_api.py)."""

import asyncio
import json

import pytest
from spec_schema import sse_chunks, validate

from plateforme.agents.errors import BadInput
from plateforme.api.agent_loop_completion import _entries_of, _sse
from plateforme.conversations.items import DoneItem, EntryItem, EventItem
from plateforme.conversations.limits import LoopBoundReached

CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}


def test_messages_become_history_and_inputs():
    history, inputs = _entries_of([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "assistant", "content": "It is sunny."},
        {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
    ])
    assert [e["type"] for e in history] == ["message.input", "function.call", "function.result", "message.output"]
    call = history[1]
    assert (call["tool_call_id"], call["name"], json.loads(call["arguments"])) == ("call_1", "get_weather",
                                                                                 {"city": "Paris"})
    assert history[2]["result"] == "sunny" and history[3]["content"] == "It is sunny."
    assert [(e["type"], e["content"]) for e in inputs] == [("message.input", "And tomorrow?")]
    assert all(e["id"] and e["created_at"] for e in history + inputs)
    # The results of the client's function calls are the inputs of the next response.
    _, inputs = _entries_of([{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [CALL]},
                             {"role": "tool", "tool_call_id": "call_1", "content": "rain"}])
    assert [(e["type"], e["tool_call_id"], e["result"]) for e in inputs] == [("function.result", "call_1", "rain")]


@pytest.mark.parametrize(("messages", "param"), [
    ([{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}], "messages.0.role"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "messages"),
])
def test_what_the_loop_cannot_take_is_a_400_naming_it(messages, param):
    with pytest.raises(BadInput) as refused:
        _entries_of(messages)
    assert refused.value.param == param


def _collect(items) -> str:
    async def run():
        async def feed():
            for item in items:
                if isinstance(item, Exception):
                    raise item
                yield item
        return "".join([chunk async for chunk in _sse(feed(), "cmpl-1", 1700000000, "m")])
    return asyncio.run(run())


def _delta(content) -> EventItem:
    return EventItem({"type": "message.output.delta", "id": "msg_1", "content": content})


USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def test_loop_items_become_chat_chunks_valid_against_the_spec():
    answer = {"object": "entry", "type": "message.output", "role": "assistant", "content": "Hi there"}
    body = _collect([EventItem({"type": "conversation.response.started"}), _delta("Hi"),
                     _delta({"type": "tool_reference", "tool": "document_library", "title": "a"}),
                     _delta({"type": "text", "text": " there"}), EntryItem(answer),
                     DoneItem(USAGE, "idle", outputs=[answer])])
    chunks, done = sse_chunks(body)
    assert done
    for chunk in chunks:
        validate(chunk, "CompletionChunk")
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hi there"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["usage"] == USAGE


def test_client_function_calls_end_the_stream_as_tool_calls():
    call = {"object": "entry", "type": "function.call", "tool_call_id": "c1", "name": "f", "arguments": "{}"}
    chunks, done = sse_chunks(_collect([DoneItem(USAGE, "waiting", outputs=[call])]))
    assert done and chunks[-2]["choices"][0]["delta"]["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    for chunk in chunks:
        validate(chunk, "CompletionChunk")


def test_a_failure_after_the_start_is_an_error_event_without_done():
    body = _collect([_delta("Hi"), LoopBoundReached("steps", "8 model steps reached (PLATEFORME_AGENT_MAX_STEPS)")])
    chunks, done = sse_chunks(body)
    assert not done
    assert chunks[-1]["object"] == "error" and "steps" in chunks[-1]["message"] and chunks[-1]["code"]


def test_errors_told_in_a_stream_have_the_status_of_their_http_answer():
    """status_of is what the handlers answer, so a stream's error event says the same as a 4xx/5xx
    would (a rate limit mid-stream was a 500 in the agent completion stream)."""
    from plateforme.agents.errors import AgentsError
    from plateforme.api.errors import status_of
    from plateforme.chat.errors import ContextLengthExceeded
    from plateforme.pipeline.guards import RequestRefused
    from plateforme.usage.limits import RateLimited

    assert status_of(RateLimited("tokens per minute", 3)) == (429, "rate_limited")
    assert status_of(RequestRefused("guardrails", "hate")) == (403, "forbidden")
    assert status_of(AgentsError(502, "the MCP server is gone")) == (502, "upstream_error")
    assert status_of(AgentsError(404, "no agent")) == (404, "not_found")
    assert status_of(ContextLengthExceeded.__new__(ContextLengthExceeded))[0] == 400
    assert status_of(RuntimeError("boom")) == (500, "internal_error")
