"""Every JSON response and stream chunk validates against its endpoint's schema in Mistral's spec."""

import httpx
import pytest
from conftest import PARIS_MESSAGES
from spec_schema import sse_chunks, validate


def test_chat_response_matches_spec(http, model):
    r = http.post("/v1/chat/completions", json={"model": model, "messages": PARIS_MESSAGES,
                                                 "max_tokens": 30, "n": 2, "random_seed": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    validate(body, "ChatCompletionResponse")
    assert body["object"] == "chat.completion"
    assert [c["index"] for c in body["choices"]] == [0, 1]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_stream_chunks_match_spec(http, model):
    payload = {"model": model, "messages": PARIS_MESSAGES, "max_tokens": 20, "stream": True, "n": 2}
    with http.stream("POST", "/v1/chat/completions", json=payload) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        chunks, done = sse_chunks(r.read().decode())
    assert done, "stream must end with data: [DONE]"
    assert len(chunks) > 4
    for chunk in chunks:
        validate(chunk, "CompletionChunk")
        validate({"data": chunk}, "CompletionEvent")
    # First delta of each choice carries the role; finish_reason only on each choice's last chunk.
    for index in (0, 1):
        mine = [c["choices"][0] for c in chunks if c["choices"] and c["choices"][0]["index"] == index]
        assert mine[0]["delta"].get("role") == "assistant"
        assert [ch["finish_reason"] is not None for ch in mine] == [False] * (len(mine) - 1) + [True]
    assert "usage" in chunks[-1] and all("usage" not in c for c in chunks[:-1])
    assert len({c["id"] for c in chunks}) == 1


def test_model_list_and_card_match_spec(http, model):
    listing = http.get("/v1/models").json()
    validate(listing, "ModelList")
    card = http.get(f"/v1/models/{model}").json()
    validate(card, "BaseModelCard")
    assert card["id"] == model and card["type"] == "base"
    assert card["capabilities"]["completion_chat"] is True
    assert card["max_context_length"] == 2048
    assert model in [m["id"] for m in listing["data"]]


@pytest.mark.parametrize("payload", [
    {"messages": [{"role": "user", "content": "hi"}]},
    {"model": "m", "messages": [{"role": "user", "content": 5}]},
])
def test_validation_errors_match_spec(http, payload):
    r = http.post("/v1/chat/completions", json=payload)
    assert r.status_code == 422
    validate(r.json(), "HTTPValidationError")


def test_spec_validator_rejects_wrong_shapes():
    """The validator itself can fail: a chunk missing `choices` or a bad finish_reason is caught."""
    import jsonschema
    with pytest.raises(jsonschema.ValidationError):
        validate({"id": "x", "model": "m"}, "CompletionChunk")
    with pytest.raises(jsonschema.ValidationError):
        validate({"id": "x", "model": "m", "choices": [
            {"index": 0, "delta": {"content": "a"}, "finish_reason": "done"}]}, "CompletionChunk")


def test_health_reports_a_real_generation(server, model):
    r = httpx.get(f"{server.url}/health", timeout=30)
    assert r.status_code == 200
    reports = {m["model"]: m for m in r.json()["models"]}
    assert set(reports) == {model, "multilingual-e5-small"}  # the packaged chat and embedding models
    report = reports[model]
    assert report["state"] == "ready" and report["ok"] is True
    assert report["probe_ms"] > 0 and isinstance(report["pid"], int)
