"""Engine `openai`: plateforme in front of remote OpenAI-compatible servers started by the test.

Two real remotes on loopback: a standalone llama.cpp server (the worker module, run by hand,
requiring an API key) and a second plateforme node (static API key) whose grammar paths make
tool calls on the 135M model; llama.cpp's own `tool_choice: required` does not constrain this
model's template, so tool calls are tested through the plateforme node. The official openai and
mistralai SDKs drive the front gateway.
"""

import asyncio
import json
import subprocess
import sys
import time

import httpx
import openai
import pytest
from conftest import PARIS_MESSAGES
from mistralai.client import Mistral
from server_process import DEFAULT_MODEL, ServerProcess, default_model_entry, free_port, wait_http_healthy

from plateforme.engines.remote_engine import RemoteEngineClient
from plateforme.engines.token_tally import TokenTally
from plateforme.models.registry import ModelRegistry
from plateforme.models.spec import ModelSpec

REMOTE_KEY = "remote-secret-1"
NODE_KEY = "node-secret-2"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "London"]}},
                   "required": ["city"]}}}


@pytest.fixture(scope="module")
def remotes(tmp_path_factory):
    """(standalone llama.cpp server requiring an API key, second plateforme node behind a static
    key), started together: the llama.cpp server is the worker module run by hand (a plain
    llama-server)."""
    port = free_port()
    gguf = ModelRegistry.from_file(None).get(DEFAULT_MODEL).weights_path()
    workdir = tmp_path_factory.mktemp("remotes")
    log = open(workdir / "llama.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "plateforme.engines.llamacpp_worker", "--model", str(gguf),
                             "--port", str(port), "--context-length", "2048", "--parallel", "2",
                             "--api-key", REMOTE_KEY], stdout=log, stderr=subprocess.STDOUT)
    node = ServerProcess(workdir, [default_model_entry(parallel=2, max_queue=8)],
                         env={"PLATEFORME_API_KEY": NODE_KEY})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http_healthy(url, proc)
        node.wait_healthy()
        yield url, node
    finally:
        node.stop()
        proc.terminate()
        proc.wait(20)
        log.close()


@pytest.fixture(scope="module")
def llama_remote(remotes) -> str:
    return remotes[0]


@pytest.fixture(scope="module")
def front(remotes, tmp_path_factory):
    llama_remote, node = remotes
    remote = {"engine": "openai", "base_url": f"{llama_remote}/v1", "context_length": 2048, "parallel": 2}
    models = [
        {**remote, "name": "remote-smol", "api_key_env": "REMOTE_API_KEY", "upstream_model": "smollm2"},
        {**remote, "name": "remote-bad-key", "api_key_env": "REMOTE_BAD_KEY"},
        {**remote, "name": "remote-no-tools", "api_key_env": "REMOTE_API_KEY",
         "capabilities": {"function_calling": False, "structured_outputs": False}},
        {**remote, "name": "remote-down", "base_url": f"http://127.0.0.1:{free_port()}/v1"},
        {**remote, "name": "remote-node", "base_url": f"{node.url}/v1", "api_key_env": "NODE_API_KEY",
         "upstream_model": DEFAULT_MODEL},
    ]
    server = ServerProcess(tmp_path_factory.mktemp("front"), models,
                           env={"REMOTE_API_KEY": REMOTE_KEY, "REMOTE_BAD_KEY": "wrong-key", "NODE_API_KEY": NODE_KEY})
    try:
        deadline = time.monotonic() + 120
        while True:  # /health stays 503 (bad key, server down): wait for the good remotes only
            try:
                body = server.health().json()
                ok = {m["model"] for m in body.get("models", []) if m["ok"]}
                if {"remote-smol", "remote-node"} <= ok:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if server.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"front gateway not ready:\n{server.log(4000)}")
            time.sleep(0.3)
        yield server
    finally:
        server.stop()


def _openai(front) -> openai.OpenAI:
    return openai.OpenAI(api_key="unused", base_url=f"{front.url}/v1", max_retries=0)


def test_openai_sdk_chat_and_stream_through_remote_llamacpp(front):
    client = _openai(front)
    response = client.chat.completions.create(model="remote-smol", messages=PARIS_MESSAGES, temperature=0,
                                              max_tokens=10)
    assert "Paris" in response.choices[0].message.content
    assert response.usage.prompt_tokens > 0 and 0 < response.usage.completion_tokens <= 10
    stream = client.chat.completions.create(model="remote-smol", messages=PARIS_MESSAGES, temperature=0,
                                            max_tokens=10, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == response.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == response.usage.completion_tokens


def test_mistralai_sdk_stream_and_json_schema(front):
    client = Mistral(api_key="unused", server_url=front.url)
    text, finish, usage = "", [], None
    for event in client.chat.stream(model="remote-smol", messages=PARIS_MESSAGES, temperature=0, max_tokens=10):
        for choice in event.data.choices:
            text += choice.delta.content or ""
            finish.append(choice.finish_reason)
        usage = event.data.usage or usage
    assert "Paris" in text
    assert finish[-1] in ("stop", "length") and all(f is None for f in finish[:-1])
    assert usage is not None and usage.completion_tokens > 0
    # Structured output through the server's own response_format (llama.cpp turns it into a grammar).
    schema = {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "London"]}},
              "required": ["city"], "additionalProperties": False}
    answer = client.chat.complete(model="remote-smol", messages=PARIS_MESSAGES, temperature=0, max_tokens=20,
                                  response_format={"type": "json_schema",
                                                   "json_schema": {"name": "city", "schema": schema}})
    assert json.loads(answer.choices[0].message.content) in ({"city": "Paris"}, {"city": "London"})


def test_tool_choice_any_through_a_second_plateforme_node(front):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    mistral = Mistral(api_key="unused", server_url=front.url)
    response = mistral.chat.complete(model="remote-node", messages=messages, tools=[WEATHER_TOOL],
                                     tool_choice="any", temperature=0, max_tokens=120)
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message.content
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and len(call.id) == 9
    assert json.loads(call.function.arguments)["city"] in ("Paris", "London")


def test_what_the_engine_cannot_do_is_a_400_naming_engine_and_feature(front):
    fim = httpx.post(f"{front.url}/v1/fim/completions", timeout=30,
                     json={"model": "remote-smol", "prompt": "def add(a, b):", "suffix": "    return c"})
    assert fim.status_code == 400, fim.text
    body = fim.json()
    assert body["object"] == "error" and "'openai'" in body["message"] and "fill-in-the-middle" in body["message"]
    with pytest.raises(openai.BadRequestError, match="min_tokens"):
        _openai(front).chat.completions.create(model="remote-smol", messages=PARIS_MESSAGES, max_tokens=4,
                                               extra_body={"min_tokens": 2})
    with pytest.raises(openai.BadRequestError, match=r"'openai'.*function calling"):
        _openai(front).chat.completions.create(model="remote-no-tools", messages=PARIS_MESSAGES, max_tokens=4,
                                               tools=[WEATHER_TOOL], tool_choice="required")
    cards = {m["id"]: m for m in httpx.get(f"{front.url}/v1/models", timeout=30).json()["data"]}
    smol, no_tools = cards["remote-smol"]["capabilities"], cards["remote-no-tools"]["capabilities"]
    assert smol["completion_chat"] and smol["function_calling"]
    assert not smol["completion_fim"] and not smol["fine_tuning"]
    assert not no_tools["function_calling"]


def test_wrong_key_and_unreachable_server_are_clear_503s(front, llama_remote):
    # The remote really requires the key: the front's successful requests sent it.
    assert httpx.post(f"{llama_remote}/v1/chat/completions", json={"messages": PARIS_MESSAGES},
                      timeout=30).status_code == 401
    client = _openai(front)
    with pytest.raises(openai.InternalServerError) as bad_key:
        client.chat.completions.create(model="remote-bad-key", messages=PARIS_MESSAGES, max_tokens=4)
    assert bad_key.value.status_code == 503
    assert "refused this gateway's credentials (HTTP 401" in bad_key.value.message
    with pytest.raises(openai.InternalServerError) as down:
        client.chat.completions.create(model="remote-down", messages=PARIS_MESSAGES, max_tokens=4, stream=True)
    assert down.value.status_code == 503 and "unreachable" in down.value.message
    health = front.health()
    assert health.status_code == 503
    models = {m["model"]: m for m in health.json()["models"]}
    assert models["remote-smol"]["ok"] and models["remote-smol"]["pid"] is None
    assert not models["remote-bad-key"]["ok"] and "HTTP 401" in models["remote-bad-key"]["error"]
    assert not models["remote-down"]["ok"] and "unreachable" in models["remote-down"]["error"]
    metrics = httpx.get(f"{front.url}/metrics", timeout=30)
    assert metrics.status_code == 200 and 'plateforme_health_probes_total{model="remote-smol"}' in metrics.text


def test_n_choices_are_one_server_request_each(front):
    response = _openai(front).chat.completions.create(model="remote-smol", messages=PARIS_MESSAGES, n=2,
                                                      max_tokens=3, seed=7)
    assert [c.index for c in response.choices] == [0, 1]
    assert all(c.message.content for c in response.choices)
    assert 2 <= response.usage.completion_tokens <= 6  # both choices' tokens, billed together


@pytest.mark.parametrize("entry, fragment", [
    ({"engine": "openai"}, "needs either `base_url`"),
    ({"engine": "openai", "base_url": "http://h/v1", "endpoints": ["http://h/v1"]}, "not both"),
    ({"engine": "openai", "endpoints": ["ftp://h"]}, "not an http"),
    ({"engine": "vllm"}, "needs `vllm`"),
    ({"engine": "openai", "base_url": "http://h/v1", "path": "x.gguf"}, "path apply to engine llamacpp only"),
    ({"engine": "openai", "base_url": "http://h/v1", "tokenizer": "tekken.json"}, "tokenizer apply to engine"),
    ({"path": "x.gguf", "base_url": "http://h/v1"}, "base_url apply to engine openai only"),
    ({}, "needs `path`"),
])
def test_engine_fields_are_validated(entry, fragment):
    with pytest.raises(ValueError, match=fragment):
        ModelSpec(name="m", **entry)


def test_tally_of_an_abandoned_remote_stream_is_a_lower_bound(llama_remote):
    spec = ModelSpec(name="remote-smol", engine="openai", base_url=f"{llama_remote}/v1")

    async def run() -> tuple[TokenTally, TokenTally, dict]:
        client = RemoteEngineClient(spec, 4, 60, REMOTE_KEY)
        payload = {"messages": PARIS_MESSAGES, "temperature": 0, "max_tokens": 12}
        try:
            cut, whole, usage = TokenTally(), TokenTally(), {}
            chunks = cut.client(client, 0, timings=False).stream_chat(payload)
            seen = 0
            async for chunk in chunks:  # the client goes away after 3 generated pieces
                seen += any((c.get("delta") or {}).get("content") for c in chunk.get("choices", []))
                if seen == 3:
                    break
            await chunks.aclose()
            async for chunk in whole.client(client, 0, timings=False).stream_chat(payload):
                usage = chunk.get("usage") or usage
            return cut, whole, usage
        finally:
            await client.close()

    cut, whole, usage = asyncio.run(run())
    assert cut.totals()[1] == 3  # one token per content chunk seen
    assert whole.totals() == (usage["prompt_tokens"], usage["completion_tokens"])  # the server's exact usage
