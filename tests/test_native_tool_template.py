"""A model whose GGUF chat template renders tools itself (Hermes-style <tool_call> template).

With the default tool_format "grammar" the gateway's constrained tool calls work on it like on
any model; the template's own format is opt-in (tool_format: template).
"""

import json
import re
from pathlib import Path

import openai
import pytest
from gguf_copy import copy_with_chat_template
from mistralai.client import Mistral
from server_process import default_model_entry

from plateforme.models.registry import ModelRegistry

TEMPLATE = (Path(__file__).parent / "data" / "hermes_tools_template.jinja").read_text()
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def tool_server(start_server, tmp_path_factory):
    src = ModelRegistry.from_file(None).specs[0].weights_path()
    gguf_path = copy_with_chat_template(src, tmp_path_factory.mktemp("gguf") / "smollm2-tools.gguf", TEMPLATE)
    return start_server(models=[default_model_entry(name="smollm2-tools", path=str(gguf_path),
                                                    parallel=2, max_queue=4)])


def test_tool_call_on_a_tool_template_model(tool_server):
    import httpx
    pid = tool_server.worker_pid("smollm2-tools")
    assert pid
    r = httpx.post(f"{tool_server.url}/v1/chat/completions", timeout=120, json={
        "model": "smollm2-tools", "messages": ASK, "tools": [WEATHER], "tool_choice": "any", "max_tokens": 100,
        "temperature": 0})
    call = r.json()["choices"][0]["message"]["tool_calls"][0]
    assert re.match(r"^[A-Za-z0-9]{9}$", call["id"]) and call["function"]["name"] == "get_weather"
    assert "city" in json.loads(call["function"]["arguments"])


def test_native_round_trip_with_both_sdks(tool_server):
    client = Mistral(api_key="unused", server_url=tool_server.url)
    first = client.chat.complete(model="smollm2-tools", messages=ASK, tools=[WEATHER], tool_choice="any",
                                 temperature=0, max_tokens=100)
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    messages = ASK + [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": call.id, "type": "function",
             "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "name": "get_weather", "content": '{"sky": "sunny"}'},
    ]
    oai = openai.OpenAI(api_key="unused", base_url=f"{tool_server.url}/v1")
    final = oai.chat.completions.create(model="smollm2-tools", messages=messages, tools=[WEATHER],
                                        tool_choice="none", temperature=0, max_tokens=40)
    assert final.choices[0].message.content
    stream = oai.chat.completions.create(model="smollm2-tools", messages=ASK, tools=[WEATHER],
                                         tool_choice="required", temperature=0, max_tokens=100, stream=True)
    calls = [tc for c in stream if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls and calls[0].function.name == "get_weather"
