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
