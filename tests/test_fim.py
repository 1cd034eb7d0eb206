"""POST /v1/fim/completions: exact prompt tokens for Mistral and StarCoder-style FIM, spec shapes, 400s."""

import asyncio
from pathlib import Path

import httpx
import pytest
from mistral_common.protocol.fim.request import FIMRequest as MistralFIMRequest
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
from mistral_served import FIM_IDS, STARCODER_FIM, TINY, shared_server
from mistral_tokenizers import V1_SPM, V3_TEKKEN, V7_SPM
from server_process import DEFAULT_MODEL
from spec_schema import sse_chunks, validate

from plateforme.fim.errors import FIMUnsupported
from plateforme.fim.gguf_tokens import FimTokens
from plateforme.fim.prompt import gguf_fim_prompt, mistral_fim_prompt
from plateforme.fim.types import FIMRequest
from plateforme.models.spec import ModelSpec

PREFIX, SUFFIX = "def add(a, b):\n    ", "\n    return c\n"


@pytest.mark.parametrize("tokenizer", [V3_TEKKEN, V7_SPM])
def test_mistral_fim_tokens_are_encode_fims(tokenizer):
    spec = ModelSpec(name="m", path="unused.gguf", tokenizer=str(tokenizer))
    expected = MistralTokenizer.from_file(tokenizer).encode_fim(MistralFIMRequest(prompt=PREFIX, suffix=SUFFIX))
    assert mistral_fim_prompt(spec, FIMRequest(model="m", prompt=PREFIX, suffix=SUFFIX)) == expected.tokens
    no_suffix = MistralTokenizer.from_file(tokenizer).encode_fim(MistralFIMRequest(prompt=PREFIX))
    assert mistral_fim_prompt(spec, FIMRequest(model="m", prompt=PREFIX)) == no_suffix.tokens


def test_tokenizer_without_fim_is_refused():
    spec = ModelSpec(name="old", path="unused.gguf", tokenizer=str(V1_SPM))
    with pytest.raises(FIMUnsupported, match="fill-in-the-middle"):
        mistral_fim_prompt(spec, FIMRequest(model="old", prompt=PREFIX))


def test_starcoder_fim_sequence():
    class Engine:  # stands in for the worker's /tokenize
        async def tokenize(self, text):
            return [ord(c) for c in text]

    fim = FimTokens(prefix=1, suffix=2, middle=3, bos=None)
    tokens = asyncio.run(gguf_fim_prompt(fim, Engine(), FIMRequest(model="m", prompt="ab", suffix="c")))
    assert tokens == [1, 97, 98, 2, 99, 3]
    with_bos = FimTokens(prefix=1, suffix=2, middle=3, bos=0)
    assert asyncio.run(gguf_fim_prompt(with_bos, Engine(), FIMRequest(model="m", prompt="ab")))[:2] == [0, 1]


@pytest.fixture(scope="module")
def served(start_server, tmp_path_factory):
    return shared_server(start_server, tmp_path_factory)


def _worker_url(server, model: str) -> str:
    """The model worker's own address (tests look at what the engine itself received)."""
    args = Path(f"/proc/{server.worker_pid(model)}/cmdline").read_bytes().split(b"\0")
    return f"http://127.0.0.1:{int(args[args.index(b'--port') + 1])}"


def test_starcoder_fim_engine_sees_the_exact_tokens(served):
    server, _ = served
    worker = _worker_url(server, STARCODER_FIM)
    tokenize = [httpx.post(f"{worker}/tokenize", json={"content": t, "add_special": False}).json()["tokens"]
                for t in (PREFIX, SUFFIX)]
    pre, suf, mid = FIM_IDS
    expected = [pre, *tokenize[0], suf, *tokenize[1], mid]
    direct = httpx.post(f"{worker}/completion", timeout=60, json={
        "prompt": expected, "n_predict": 6, "temperature": 0}).json()
    assert direct["prompt"] == f"<fim_prefix>{PREFIX}<fim_suffix>{SUFFIX}<fim_middle>"
    body = {"model": STARCODER_FIM, "prompt": PREFIX, "suffix": SUFFIX, "max_tokens": 6, "temperature": 0}
    r = httpx.post(f"{server.url}/v1/fim/completions", json=body, timeout=60)
    assert r.status_code == 200, r.text
    answer = r.json()
    validate(answer, "FIMCompletionResponse")
    assert answer["usage"]["prompt_tokens"] == len(expected)
    assert answer["choices"][0]["message"]["content"] == direct["content"]
    with httpx.stream("POST", f"{server.url}/v1/fim/completions", json={**body, "stream": True}, timeout=60) as s:
        chunks, done = sse_chunks(s.read().decode())
    assert done
    for chunk in chunks:
        validate(chunk, "CompletionChunk")
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks if c["choices"]) == direct["content"]
    assert chunks[-1]["usage"]["prompt_tokens"] == len(expected)


def test_mistral_fim_via_sdk(served):
    from mistralai.client import Mistral
    server, tokenizers = served
    expected = MistralTokenizer.from_file(tokenizers[TINY]).encode_fim(MistralFIMRequest(prompt=PREFIX, suffix=SUFFIX))
    client = Mistral(api_key="unused", server_url=server.url)
    done = client.fim.complete(model=TINY, prompt=PREFIX, suffix=SUFFIX, max_tokens=5, min_tokens=5, temperature=0)
    assert done.usage.prompt_tokens == len(expected.tokens) and done.usage.completion_tokens == 5
    assert done.choices[0].finish_reason == "length" and done.object == "chat.completion"
    events = list(client.fim.stream(model=TINY, prompt=PREFIX, suffix=SUFFIX, max_tokens=5, temperature=0))
    streamed = "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices)
    assert streamed == done.choices[0].message.content
    assert events[-1].data.usage.prompt_tokens == len(expected.tokens)


def test_model_without_fim_tokens_is_a_400(served):
    server, _ = served
    for stream in (False, True):
        r = httpx.post(f"{server.url}/v1/fim/completions", timeout=60,
                       json={"model": DEFAULT_MODEL, "prompt": "def f(", "stream": stream})
        assert r.status_code == 400
        body = r.json()
        assert body["object"] == "error" and body["param"] == "model"
        assert "no fill-in-the-middle tokens" in body["message"]
    r = httpx.post(f"{server.url}/v1/fim/completions", json={"model": "nope", "prompt": "x"}, timeout=60)
    assert r.status_code == 404 and r.json()["object"] == "error"
    r = httpx.post(f"{server.url}/v1/fim/completions", json={"model": TINY, "prompt": "x", "suffix": "y",
                                                            "max_tokens": 5000}, timeout=60)
    assert r.status_code == 400 and r.json()["type"] == "context_length_exceeded" and r.json()["param"] == "prompt"
    r = httpx.post(f"{server.url}/v1/fim/completions", json={"model": TINY, "prompt": "x", "best_of": 2})
    assert r.status_code == 422
    validate(r.json(), "HTTPValidationError")


def test_model_cards_say_which_models_do_fim(served):
    server, _ = served
    cards = {c["id"]: c for c in httpx.get(f"{server.url}/v1/models", timeout=60).json()["data"]}
    assert cards[STARCODER_FIM]["capabilities"]["completion_fim"] is True
    assert cards[TINY]["capabilities"]["completion_fim"] is True
    assert cards[DEFAULT_MODEL]["capabilities"]["completion_fim"] is False
    assert all(c["capabilities"]["function_calling"] for c in cards.values())
