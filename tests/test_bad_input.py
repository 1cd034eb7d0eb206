"""Bad requests get the right status and Mistral's error shape, and the server keeps serving."""

import pytest
from conftest import PARIS_MESSAGES

USER = [{"role": "user", "content": "hello"}]
M = "smollm2-135m-instruct"


def _error_shape(body: dict, status: int) -> None:
    assert body["object"] == "error"
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) >= {"object", "message", "type", "param", "code"}
    assert body["code"] == str(status)


@pytest.mark.parametrize("payload, status, param", [
    ({"model": M, "messages": "hello"}, 422, "messages"),
    ({"model": M, "messages": USER, "temperature": "hot"}, 422, "temperature"),
    ({"model": M, "messages": USER, "max_tokens": "ten"}, 422, "max_tokens"),
    ({"model": 7, "messages": USER}, 422, "model"),
    ({"model": M, "messages": []}, 422, "messages"),
    ({"model": M, "messages": [{"role": "robot", "content": "hi"}]}, 422, "messages.0"),
    ({"model": M, "messages": [{"content": "hi"}]}, 422, "messages.0"),
    ({"model": M, "messages": USER, "max_tokens": 0}, 422, "max_tokens"),
    ({"model": M, "messages": USER, "max_tokens": -5}, 422, "max_tokens"),
    ({"model": M, "messages": USER, "temperature": 3}, 422, "temperature"),
    ({"model": M, "messages": USER, "n": 0}, 422, "n"),
    ({"model": M, "messages": USER, "frobnicate": True}, 422, "frobnicate"),
    ({"model": "no-such-model", "messages": USER}, 404, "model"),
    ({"model": M, "messages": USER, "max_tokens": 2047}, 400, "messages"),
    ({"model": M, "messages": [{"role": "user", "content": "hello " * 3000}]}, 400, "messages"),
])
def test_bad_request(http, payload, status, param):
    r = http.post("/v1/chat/completions", json=payload)
    assert r.status_code == status, r.text
    body = r.json()
    _error_shape(body, status)
    assert body["param"] == param
    if status == 422:
        assert body["detail"] and all({"loc", "msg", "type"} <= set(d) for d in body["detail"])


def test_context_error_names_the_numbers(http):
    r = http.post("/v1/chat/completions", json={"model": M, "messages": USER, "max_tokens": 2047})
    message = r.json()["message"]
    assert "2047" in message and "2048" in message and r.json()["type"] == "context_length_exceeded"


def test_bad_stream_request_is_an_http_error_not_a_broken_stream(http):
    r = http.post("/v1/chat/completions", json={"model": M, "messages": USER, "max_tokens": 4000, "stream": True})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2", "{\"model\": \"\xe9\"}".encode("latin-1")])
def test_invalid_json(http, raw):
    r = http.post("/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422), r.text
    _error_shape(r.json(), r.status_code)


def test_unknown_route_and_model_card(http):
    r = http.get("/v1/models/no-such-model")
    assert r.status_code == 404
    _error_shape(r.json(), 404)
    r = http.get("/v1/no-such-route")
    assert r.status_code == 404 and r.json()["object"] == "error"


def test_still_serving_after_bad_input(http):
    for _ in range(3):
        http.post("/v1/chat/completions", content=b"{oops")
        http.post("/v1/chat/completions", json={"model": M, "messages": []})
    r = http.post("/v1/chat/completions", json={"model": M, "messages": PARIS_MESSAGES, "temperature": 0,
                                                 "max_tokens": 30})
    assert r.status_code == 200 and "Paris" in r.json()["choices"][0]["message"]["content"]
