"""Tool calling through the mistralai and openai SDKs, streaming and not, with a full round trip."""

import json
import re

import openai
import pytest
from mistralai.client import Mistral
from spec_schema import sse_chunks, validate

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}},
                   "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Current time in a timezone",
    "parameters": {"type": "object", "properties": {"timezone": {"type": "string", "maxLength": 40}},
                   "required": ["timezone"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
ID = re.compile(r"^[A-Za-z0-9]{9}$")


def _check_call(call_id: str, name: str, arguments) -> dict:
    assert ID.match(call_id), call_id
    assert name in ("get_weather", "get_time")
    args = json.loads(arguments) if isinstance(arguments, str) else arguments
    assert isinstance(args, dict) and set(args) == ({"city"} if name == "get_weather" else {"timezone"})
    return args


def test_mistralai_tool_round_trip(server, model):
    client = Mistral(api_key="unused", server_url=server.url)
    first = client.chat.complete(model=model, messages=ASK, tools=[WEATHER, TIME], tool_choice="any",
                                 temperature=0, max_tokens=200)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls
    for call in calls:
        _check_call(call.id, call.function.name, call.function.arguments)
    messages = ASK + [{"role": "assistant", "content": "", "tool_calls": [
        {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
        for c in calls]}]
    messages += [{"role": "tool", "tool_call_id": c.id, "name": c.function.name,
                  "content": json.dumps({"temperature_c": 21, "sky": "sunny"})} for c in calls]
    final = client.chat.complete(model=model, messages=messages, tools=[WEATHER, TIME], tool_choice="none",
                                 temperature=0, max_tokens=60)
    assert final.choices[0].finish_reason in ("stop", "length")
    assert final.choices[0].message.content and not final.choices[0].message.tool_calls


def test_mistralai_tool_stream(server, model):
    client = Mistral(api_key="unused", server_url=server.url)
    calls, finish = [], []
    for event in client.chat.stream(model=model, messages=ASK, tools=[WEATHER], tool_choice="any",
                                    temperature=0, max_tokens=200):
        for choice in event.data.choices:
            calls += choice.delta.tool_calls or []
            finish.append(choice.finish_reason)
    assert finish[-1] == "tool_calls" and all(f is None for f in finish[:-1])
    assert calls and _check_call(calls[0].id, calls[0].function.name, calls[0].function.arguments)


def test_openai_named_tool_choice_and_stream(server, model):
    client = openai.OpenAI(api_key="unused", base_url=f"{server.url}/v1")
    response = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "What time is it in Tokyo?"}],
        tools=[WEATHER, TIME], tool_choice={"type": "function", "function": {"name": "get_time"}},
        temperature=0, max_tokens=200)
    (call,) = response.choices[0].message.tool_calls
    assert call.function.name == "get_time"
    _check_call(call.id, call.function.name, call.function.arguments)
    stream = client.chat.completions.create(model=model, messages=ASK, tools=[WEATHER], tool_choice="required",
                                            temperature=0, max_tokens=200, stream=True)
    deltas = [c.choices[0].delta.tool_calls for c in stream if c.choices and c.choices[0].delta.tool_calls]
    assert deltas and deltas[0][0].function.name == "get_weather"


def test_auto_may_answer_in_text(http, model):
    r = http.post("/v1/chat/completions", json={
        "model": model, "tools": [WEATHER], "tool_choice": "auto", "temperature": 0, "max_tokens": 200,
        "messages": [{"role": "user", "content": "Hello! How are you today?"}]})
    assert r.status_code == 200
    validate(r.json(), "ChatCompletionResponse")
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] in ("stop", "tool_calls")
    assert choice["message"].get("content") or choice["message"].get("tool_calls")


def test_tool_stream_chunks_match_spec(http, model):
    payload = {"model": model, "messages": ASK, "tools": [WEATHER], "tool_choice": "any", "stream": True,
               "temperature": 0, "max_tokens": 200}
    with http.stream("POST", "/v1/chat/completions", json=payload) as r:
        chunks, done = sse_chunks(r.read().decode())
    assert done
    for chunk in chunks:
        validate(chunk, "CompletionChunk")
    assert any(c["choices"] and c["choices"][0]["delta"].get("tool_calls") for c in chunks)


@pytest.mark.parametrize("payload, status, fragment", [
    ({"tools": [{"type": "function", "function": {"name": "bad name!", "parameters": {}}}]}, 422, "name"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]}, 422,
     "type object"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, 422, "parameters"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, 400, "nope"),
    ({"tool_choice": "sometimes"}, 422, "tool_choice"),
    ({"messages": ASK + [{"role": "tool", "tool_call_id": "abcdefghi", "content": "{}"}]}, 400, "abcdefghi"),
    ({"messages": [{"role": "assistant", "content": "Hi", "prefix": True}] + ASK}, 422, "prefix"),
])
def test_bad_tool_requests(http, model, payload, status, fragment):
    body = {"model": model, "messages": ASK, "max_tokens": 20, **payload}
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == status, r.text
    assert r.json()["object"] == "error" and fragment in r.json()["message"]


# A tool message without `name` is named after the call it answers (unit tests, no server).

CALLED = [
    {"role": "user", "content": "Weather and time in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call00001", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "call00002", "type": "function", "function": {"name": "get_time", "arguments": '{"timezone": "CET"}'}},
    ]},
]


def test_tool_result_takes_the_name_of_its_call():
    from plateforme.chat.tool_names import named_tool_results

    messages = CALLED + [{"role": "tool", "tool_call_id": "call00002", "content": "12:00"},
                         {"role": "tool", "tool_call_id": "call00001", "content": "sunny"},
                         {"role": "tool", "tool_call_id": "call00001", "content": "again", "name": "mine"}]
    named = named_tool_results(messages)
    assert [m.get("name") for m in named[2:]] == ["get_time", "get_weather", "mine"]
    assert "name" not in messages[2]  # the caller's messages are left as they were
    # Without ids, results answer the latest turn's calls in order.
    anonymous = [CALLED[0], {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": n, "arguments": "{}"}} for n in ("get_weather", "get_time")]},
        {"role": "tool", "content": "sunny"}, {"role": "tool", "content": "12:00"}]
    assert [m.get("name") for m in named_tool_results(anonymous)[2:]] == ["get_weather", "get_time"]


def test_generic_tool_prompt_names_the_function_of_an_anonymous_result():
    from plateforme.chat.generic_tools import as_plain_messages

    plain = as_plain_messages(CALLED + [{"role": "tool", "tool_call_id": "call00001", "content": "sunny"}])
    assert plain[-1] == {"role": "user", "content": "Result of get_weather (call call00001): sunny"}


def test_mistral_prompt_names_the_function_of_an_anonymous_result():
    from plateforme.chat.mistral_prompt import mistral_request
    from plateforme.chat.types import ChatRequest

    req = ChatRequest(model="m", messages=CALLED + [{"role": "tool", "tool_call_id": "call00002", "content": "12:00"}])
    assert mistral_request(req, [WEATHER, TIME]).messages[-1].name == "get_time"


# A constrained tool answer that does not parse is plain content, never an error (unit tests).

UNPARSABLE_ANSWERS = [
    '{"tool_calls": [{"name": "get_weather", "',  # a stop string cut it
    '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]',
    '{"content": "Par',
    "", "[1, 2]", "42", '"text"', "null",
    '{"tool_calls": "none"}', '{"tool_calls": []}', '{"tool_calls": [{"arguments": {}}]}',
    '{"tool_calls": [{"name": 3, "arguments": {}}]}', '{"tool_calls": [{"name": "f", "arguments": [1]}]}',
    '{"content": 3}',
]


def test_unparsable_tool_answer_is_plain_content():
    from plateforme.chat.generic_tools import parse_answer

    for text in UNPARSABLE_ANSWERS:
        assert parse_answer(text) == (text, []), text
    # Well-formed answers still parse.
    assert parse_answer('{"content": "Paris."}') == ("Paris.", [])
    content, calls = parse_answer('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, '
                                  '{"name": "get_weather", "arguments": {"city": "Paris"}}]}')
    assert content is None and len(calls) == 1
    assert calls[0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}


def test_stop_string_cutting_a_tool_call_gives_content(http, model):
    """The constrained answer always starts {"tool_calls": [{"name": "get_weather", "arguments": ...;
    a stop string inside it leaves JSON that does not parse: the answer is that text, as cut."""
    r = http.post("/v1/chat/completions", json={"model": model, "messages": ASK, "tools": [WEATHER],
                                                "tool_choice": "any", "stop": ["arguments"], "max_tokens": 40})
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]
    assert "".join(choice["message"]["content"].split()).startswith('{"tool_calls":[{"name":"get_weather","')


# As MCP servers (FastMCP) describe a tool without arguments: extra properties are not forbidden.
RESTOCK = {"type": "function", "function": {"name": "restock", "description": "Order more stock",
                                            "parameters": {"type": "object", "properties": {}}}}


def test_a_forced_call_has_only_the_declared_arguments():
    """Tool arguments are generated under their declared properties only (json_bounds.declared_only),
    on the generic path as on the Mistral one, so that no engine's schema compiler can let a model
    invent arguments for a schema that does not forbid them."""
    from plateforme.chat.generic_tools import answer_schema

    call = answer_schema([RESTOCK, WEATHER], must_call=True, parallel=False)["properties"]["tool_calls"]["items"]
    restock, weather = call["anyOf"]
    assert restock["properties"]["arguments"] == {"type": "object", "properties": {}, "additionalProperties": False}
    assert weather["properties"]["arguments"]["additionalProperties"] is False
    assert RESTOCK["function"]["parameters"] == {"type": "object", "properties": {}}  # the tool's own is left as it is
    open_ended = {"type": "object", "properties": {}, "additionalProperties": {"type": "integer"}}
    kept = answer_schema([{"type": "function", "function": {"name": "f", "parameters": open_ended}}], True, False)
    assert kept["properties"]["tool_calls"]["items"]["properties"]["arguments"] == open_ended  # said otherwise


def test_a_forced_call_of_a_tool_without_arguments_ends_with_none(http, model):
    """Live, on llama.cpp: the call of a tool without arguments is exactly `{}`. (llama.cpp's schema
    converter already forbade undeclared properties before declared_only; this checks the result.)"""
    for seed in range(3):
        r = http.post("/v1/chat/completions", json={
            "model": model, "messages": [{"role": "user", "content": "We are out of apples."}], "tools": [RESTOCK],
            "tool_choice": "any", "max_tokens": 48, "temperature": 0.9, "random_seed": seed})
        assert r.status_code == 200, r.text
        choice = r.json()["choices"][0]
        assert choice["finish_reason"] == "tool_calls", choice
        assert [c["function"] for c in choice["message"]["tool_calls"]] == [{"name": "restock", "arguments": "{}"}]
