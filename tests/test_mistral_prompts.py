"""Prompts of Mistral-format models are exactly mistral-common's tokens (v3, v7, v11).

Requests go in as the JSON the API receives; the expected tokens come from a hand-written
mistral-common ChatCompletionRequest of the same conversation.
"""

import json

import pytest
from mistral_common.protocol.instruct.messages import AssistantMessage, SystemMessage, ToolMessage, UserMessage
from mistral_common.protocol.instruct.request import ChatCompletionRequest as MistralRequest
from mistral_common.protocol.instruct.tool_calls import Function, FunctionCall, Tool, ToolCall
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
from mistral_served import TINY, TINY_V11, shared_server
from mistral_tokenizers import V3_SPM, V3_TEKKEN, V7_SPM, write_v11_tekken

from plateforme.api.schemas.chat import ChatCompletionRequest
from plateforme.chat.errors import InvalidChatRequest
from plateforme.chat.mistral_prompt import encode_chat
from plateforme.chat.mistral_tool_calls import parse_tool_calls, tool_calls_token

PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WIRE_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": PARAMS}},
    {"type": "function", "function": {"name": "get_time", "description": "Local time", "parameters": PARAMS}},
]
WIRE_MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "What is the weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "abcDEF123", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "abcDEF123", "name": "get_weather", "content": '{"sky": "sunny", "c": 21}'},
]


def _mistral_tools() -> list[Tool]:
    return [Tool(function=Function(name=t["function"]["name"], description=t["function"]["description"],
                                   parameters=PARAMS)) for t in WIRE_TOOLS]


def _mistral_history() -> list:
    return [
        SystemMessage(content="You are a terse assistant."),
        UserMessage(content="What is the weather in Paris?"),
        AssistantMessage(tool_calls=[ToolCall(id="abcDEF123", function=FunctionCall(
            name="get_weather", arguments={"city": "Paris"}))]),
        ToolMessage(content='{"sky": "sunny", "c": 21}', tool_call_id="abcDEF123", name="get_weather"),
    ]


@pytest.fixture(scope="module", params=["v3", "v3-tekken", "v7", "v11"])
def tokenizer(request, tmp_path_factory) -> MistralTokenizer:
    files = {"v3": V3_SPM, "v3-tekken": V3_TEKKEN, "v7": V7_SPM}
    path = files.get(request.param) or write_v11_tekken(tmp_path_factory.mktemp("tok") / "tekken.json")
    tok = MistralTokenizer.from_file(path)
    assert tok.version.value == request.param.split("-")[0]
    return tok


def _ours(tokenizer, body: dict) -> list[int]:
    req = ChatCompletionRequest.model_validate({"model": "m", **body}).to_chat_request()
    from plateforme.chat.engine_payload import tool_mode
    return encode_chat(tokenizer, req, tool_mode(req)[0])


def test_tools_tool_calls_and_results(tokenizer):
    ours = _ours(tokenizer, {"messages": WIRE_MESSAGES, "tools": WIRE_TOOLS})
    expected = tokenizer.encode_chat_completion(MistralRequest(messages=_mistral_history(), tools=_mistral_tools()))
    assert ours == expected.tokens
    assert ours.count(tool_calls_token(tokenizer)) == 1


def test_second_turn_after_an_answer(tokenizer):
    more = [{"role": "assistant", "content": "Sunny, 21 C."}, {"role": "user", "content": "And the time?"}]
    ours = _ours(tokenizer, {"messages": WIRE_MESSAGES + more, "tools": WIRE_TOOLS, "tool_choice": "any"})
    history = _mistral_history() + [AssistantMessage(content="Sunny, 21 C."), UserMessage(content="And the time?")]
    assert ours == tokenizer.encode_chat_completion(MistralRequest(messages=history, tools=_mistral_tools())).tokens


def test_named_tool_choice_offers_only_that_tool(tokenizer):
    ours = _ours(tokenizer, {"messages": WIRE_MESSAGES[:2], "tools": WIRE_TOOLS,
                             "tool_choice": {"type": "function", "function": {"name": "get_time"}}})
    expected = MistralRequest(messages=_mistral_history()[:2], tools=_mistral_tools()[1:])
    assert ours == tokenizer.encode_chat_completion(expected).tokens


def test_tool_choice_none_offers_no_tools(tokenizer):
    ours = _ours(tokenizer, {"messages": WIRE_MESSAGES, "tools": WIRE_TOOLS, "tool_choice": "none"})
    assert ours == tokenizer.encode_chat_completion(MistralRequest(messages=_mistral_history())).tokens


def test_prefix_and_content_chunks(tokenizer):
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Write a haiku"}]},
                         {"role": "assistant", "content": "Autumn", "prefix": True}]}
    expected = MistralRequest(messages=[UserMessage(content="Write a haiku"),
                                        AssistantMessage(content="Autumn", prefix=True)])
    ours = _ours(tokenizer, body)
    assert ours == tokenizer.encode_chat_completion(expected).tokens
    assert ours[-1] != tokenizer.instruct_tokenizer.tokenizer.eos_id


def test_model_tool_calls_parse_back(tokenizer):
    """What the model writes in its version's format comes back as Mistral tool calls."""
    calls = [ToolCall(id="abcDEF123", function=FunctionCall(name="get_weather", arguments={"city": "Paris"})),
             ToolCall(id="xyzXYZ789", function=FunctionCall(name="get_time", arguments={"city": "Lyon"}))]
    results = [ToolMessage(content="1", tool_call_id=c.id, name=c.function.name) for c in calls]
    conversation = MistralRequest(messages=[UserMessage(content="hi"), AssistantMessage(tool_calls=calls), *results],
                                  tools=_mistral_tools())
    tokens = tokenizer.encode_chat_completion(conversation).tokens
    eos = tokenizer.instruct_tokenizer.tokenizer.eos_id
    answer = tokens[tokens.index(tool_calls_token(tokenizer)):tokens.index(eos) + 1]
    parsed = parse_tool_calls(tokenizer, answer)
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in parsed] == [
        ("get_weather", {"city": "Paris"}), ("get_time", {"city": "Lyon"})]
    assert all(len(c["id"]) == 9 and c["id"].isalnum() for c in parsed)
    assert parse_tool_calls(tokenizer, answer[:-6]) is None  # cut-off JSON is not a call


def test_unencodable_conversation_is_a_400(tokenizer):
    with pytest.raises(InvalidChatRequest):
        _ours(tokenizer, {"messages": [{"role": "assistant", "content": "no user turn"}]})


# --- Served: a tiny random Mistral-native model, prompts built by the gateway -------------------


@pytest.fixture(scope="module")
def served(start_server, tmp_path_factory):
    return shared_server(start_server, tmp_path_factory)


def _count(tokenizer_file, messages: list, tools: list | None = None) -> int:
    tok = MistralTokenizer.from_file(tokenizer_file)
    return len(tok.encode_chat_completion(MistralRequest(messages=messages, tools=tools)).tokens)


def test_served_prompt_is_mistral_commons(served):
    import httpx
    from spec_schema import validate
    server, tokenizers = served
    for model, tools in ((TINY, None), (TINY_V11, WIRE_TOOLS)):
        body = {"model": model, "messages": WIRE_MESSAGES, "max_tokens": 3, "temperature": 0}
        if tools:
            body |= {"tools": tools, "tool_choice": "none"}
        r = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60)
        assert r.status_code == 200, r.text
        validate(r.json(), "ChatCompletionResponse")
        assert r.json()["usage"]["prompt_tokens"] == _count(tokenizers[model], _mistral_history())
    r = httpx.post(f"{server.url}/v1/chat/completions", timeout=60, json={
        "model": TINY, "messages": WIRE_MESSAGES, "tools": WIRE_TOOLS, "max_tokens": 3})
    assert r.json()["usage"]["prompt_tokens"] == _count(tokenizers[TINY], _mistral_history(), _mistral_tools())
    too_long = httpx.post(f"{server.url}/v1/chat/completions", timeout=60, json={
        "model": TINY, "messages": WIRE_MESSAGES, "max_tokens": 1020})
    assert too_long.status_code == 400 and too_long.json()["type"] == "context_length_exceeded"


def _check_calls(calls, names=("get_weather", "get_time")):
    import jsonschema
    assert calls
    for call in calls:
        assert len(call.id) == 9 and call.id.isalnum()
        assert call.function.name in names
        jsonschema.validate(json.loads(call.function.arguments), PARAMS)


@pytest.mark.parametrize("model", [TINY, TINY_V11])
def test_tool_choice_any_gives_valid_calls_via_sdk(served, model):
    from mistralai.client import Mistral
    server, tokenizers = served
    client = Mistral(api_key="unused", server_url=server.url)
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.complete(model=model, messages=ask, tools=WIRE_TOOLS, tool_choice="any", temperature=0.7,
                                 random_seed=1)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    _check_calls(choice.message.tool_calls)
    streamed = [tc for event in client.chat.stream(model=model, messages=ask, tools=WIRE_TOOLS, tool_choice="any",
                                                    random_seed=2)
                for tc in (event.data.choices[0].delta.tool_calls or []) if event.data.choices]
    _check_calls(streamed)
    named = client.chat.complete(model=model, messages=ask, tools=WIRE_TOOLS, temperature=0,
                                 tool_choice={"type": "function", "function": {"name": "get_time"}})
    _check_calls(named.choices[0].message.tool_calls, names=("get_time",))
    # Round trip: the tool's result goes back, the model answers in text.
    call = choice.message.tool_calls[0]
    history = ask + [
        {"role": "assistant", "content": "", "tool_calls": [{"id": call.id, "type": "function", "function": {
            "name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "name": call.function.name, "content": '{"sky": "sunny"}'}]
    final = client.chat.complete(model=model, messages=history, tools=WIRE_TOOLS, tool_choice="none",
                                 max_tokens=8, temperature=0)
    assert final.choices[0].finish_reason in ("stop", "length") and final.choices[0].message.content
    expected = [UserMessage(content=ask[0]["content"]),
                AssistantMessage(tool_calls=[ToolCall(id=call.id, function=FunctionCall(
                    name=call.function.name, arguments=call.function.arguments))]),
                ToolMessage(content='{"sky": "sunny"}', tool_call_id=call.id, name=call.function.name)]
    assert final.usage.prompt_tokens == _count(tokenizers[model], expected)


def test_stream_n_logprobs_and_min_tokens(served):
    import httpx
    from spec_schema import sse_chunks, validate
    server, _ = served
    body = {"model": TINY, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 6, "n": 2,
            "stream": True, "logprobs": True, "top_logprobs": 2, "min_tokens": 6, "random_seed": 5}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        chunks, done = sse_chunks(r.read().decode())
    assert done
    for chunk in chunks:
        validate(chunk, "CompletionChunk")
    assert chunks[-1]["usage"]["completion_tokens"] == 12
    logprobs = [lp for c in chunks for ch in c["choices"] for lp in (ch.get("logprobs") or {}).get("content", [])]
    # One entry per token, but a token ending inside a UTF-8 character may reach the client with the next.
    assert 8 <= len(logprobs) <= 12 and all(len(lp["top_logprobs"]) == 2 for lp in logprobs)
    finishes = sorted(ch["finish_reason"] for c in chunks for ch in c["choices"] if ch["finish_reason"])
    assert finishes == ["length", "length"]


def test_auto_mode_parses_calls_the_model_writes(tokenizer):
    """With tool_choice auto, text streams until the model writes [TOOL_CALLS]; the rest is parsed."""
    import asyncio

    from plateforme.chat.mistral_choice import mistral_choices
    from plateforme.generation.reduction import reduce_stream
    from plateforme.models.spec import ModelSpec

    calls = [ToolCall(id="abcDEF123", function=FunctionCall(name="get_time", arguments={"city": "Rome"}))]
    conversation = MistralRequest(tools=_mistral_tools(), messages=[
        UserMessage(content="hi"), AssistantMessage(tool_calls=calls),
        ToolMessage(content="1", tool_call_id="abcDEF123", name="get_time")])
    tokens = tokenizer.encode_chat_completion(conversation).tokens
    eos = tokenizer.instruct_tokenizer.tokenizer.eos_id
    answer = tokens[tokens.index(tool_calls_token(tokenizer)):tokens.index(eos)]
    text = tokenizer.instruct_tokenizer.tokenizer.encode("Let me check.", bos=False, eos=False)

    class Engine:
        async def stream_completion(self, payload):
            assert payload["prompt"][-1] == tokenizer.instruct_tokenizer.END_INST
            yield {"content": "Let me check.", "tokens": text}
            for token in answer:  # control tokens come with empty text
                yield {"content": "", "tokens": [token]}
            yield {"content": "", "tokens": [], "stop": True, "stop_type": "eos", "tokens_evaluated": 9,
                   "tokens_predicted": len(text) + len(answer)}

    spec = ModelSpec(name="m", path="unused.gguf", tokenizer=str(tokenizer.instruct_tokenizer.tokenizer.file_path))
    req = ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                                "tools": WIRE_TOOLS}).to_chat_request()
    (choice,) = mistral_choices(lambda index: Engine(), spec, req)
    completion = asyncio.run(reduce_stream(choice.stream(), 1, with_logprobs=False))
    result, usage = completion.choices[0], completion.usage
    assert result.content == "Let me check." and result.finish_reason == "tool_calls"
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in result.tool_calls] == [
        ("get_time", {"city": "Rome"})]
    assert usage.completion_tokens == len(text) + len(answer)
