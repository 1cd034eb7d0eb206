"""Reasoning models end to end, and `prediction` accepted, through a live plateforme.

The reasoning server here is a test double: a tiny real HTTP server written in this test that
speaks the OpenAI streaming protocol the way a remote reasoning server does (vLLM or llama.cpp
`llama-server` with a reasoning format, or a model that writes `<think>` inline), because the
135M default model never thinks by itself and no reasoning model can be downloaded here. Behind
it, plateforme runs its real `openai` engine, and the real mistralai SDK (its ThinkChunk types)
and openai SDK read the answers. The default SmolLM2 model (the shared `server`) does not reason:
reasoning fields are refused on it with a 400, and `prediction` never changes its answer.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import openai
import pytest
from mistralai.client import Mistral
from mistralai.client.models import TextChunk, ThinkChunk
from server_process import DEFAULT_MODEL

# What the double streams, by the upstream model asked for: content pieces with the markers cut
# across pieces (`inline`), or the thinking as `reasoning_content` deltas (`field`).
INLINE = ["<thi", "nk>Let me", " think.</th", "ink>\n\nThe answer", " is 42."]
FIELD = [{"reasoning_content": "Step one. "}, {"reasoning_content": "Step two."}, {"content": "Paris."}]


class _ReasoningServer(BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        self._json({"object": "list", "data": [{"id": "inline", "object": "model"}, {"id": "field", "object": "model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        deltas = [{"content": p} for p in INLINE] if body.get("model") == "inline" else FIELD
        if not body.get("stream"):  # the gateway's health probe
            self._json({"id": "x", "object": "chat.completion", "model": body.get("model"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                     "finish_reason": "length"}],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        head = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": body.get("model")}
        events = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", **d}, "finish_reason": None}]}
                  for d in deltas]
        events.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        events.append({**head, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": len(deltas),
                                                         "total_tokens": 9 + len(deltas)}})
        for event in events:
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def _json(self, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def reasoning_remote():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ReasoningServer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def front(start_server, reasoning_remote):
    """A gateway with remote models only (no llama.cpp worker to start): two declared reasoning,
    one the same server undeclared."""
    remote = {"engine": "openai", "base_url": reasoning_remote, "context_length": 2048, "parallel": 2}
    return start_server(models=[
        {**remote, "name": "thinker-inline", "upstream_model": "inline", "reasoning": True},
        {**remote, "name": "thinker-field", "upstream_model": "field", "reasoning": True},
        {**remote, "name": "plain-remote", "upstream_model": "inline"},
    ])


def test_thinking_comes_apart_from_the_answer_with_the_mistralai_sdk(front):
    client = Mistral(api_key="unused", server_url=front.url)
    message = client.chat.complete(model="thinker-inline", messages=[{"role": "user", "content": "6 x 7?"}],
                                   reasoning_effort="high", prompt_mode="reasoning").choices[0].message
    think, text = message.content
    assert isinstance(think, ThinkChunk) and isinstance(text, TextChunk)
    assert [t.text for t in think.thinking] == ["Let me think."] and text.text == "The answer is 42."

    thinking, answer = [], []
    for event in client.chat.stream(model="thinker-inline", messages=[{"role": "user", "content": "6 x 7?"}]):
        content = event.data.choices[0].delta.content if event.data.choices else None
        if isinstance(content, list):
            assert all(isinstance(c, ThinkChunk) for c in content)
            thinking += [t.text for c in content for t in c.thinking]
        elif content:
            answer.append(content)
    assert "".join(thinking) == "Let me think." and len(thinking) >= 2  # streamed as it came
    assert "".join(answer) == "The answer is 42."


def test_reasoning_content_becomes_thinking_and_fields_reach_the_server(front):
    client = openai.OpenAI(api_key="unused", base_url=f"{front.url}/v1")
    pieces = []
    for chunk in client.chat.completions.create(
            model="thinker-field", messages=[{"role": "user", "content": "Capital of France?"}], stream=True,
            reasoning_effort="low", prediction={"type": "content", "content": "Paris."}):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    thinking = "".join(t["text"] for p in pieces if isinstance(p, list) for c in p for t in c["thinking"])
    assert thinking == "Step one. Step two."
    assert "".join(p for p in pieces if isinstance(p, str)) == "Paris."
    sent = [b for b in _ReasoningServer.bodies if b.get("stream") and b.get("model") == "field"][-1]
    assert sent["reasoning_effort"] == "low" and sent["prediction"] == {"type": "content", "content": "Paris."}


def test_a_model_not_declared_reasoning_keeps_its_text_and_refuses_reasoning_fields(front):
    body = {"model": "plain-remote", "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(f"{front.url}/v1/chat/completions", json=body, timeout=60)
    assert r.json()["choices"][0]["message"]["content"] == "".join(INLINE)
    r = httpx.post(f"{front.url}/v1/chat/completions", json={**body, "reasoning_effort": "medium"}, timeout=60)
    assert r.status_code == 400 and r.json()["param"] == "reasoning_effort"
    assert "'plain-remote' is not a reasoning model" in r.json()["message"]
    cards = {m["id"]: m for m in httpx.get(f"{front.url}/v1/models", timeout=30).json()["data"]}
    assert cards["thinker-inline"]["capabilities"]["reasoning"] is True
    assert cards["plain-remote"]["capabilities"]["reasoning"] is False


def test_the_default_model_refuses_reasoning_and_prediction_never_changes_its_answer(server):
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Say hello."}],
            "temperature": 0, "random_seed": 3, "max_tokens": 8}
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=120) as http:
        for field, value in (("reasoning_effort", "high"), ("prompt_mode", "reasoning")):
            r = http.post("/v1/chat/completions", json={**body, field: value})
            assert r.status_code == 400 and r.json()["param"] == field
            assert f"{DEFAULT_MODEL!r} is not a reasoning model" in r.json()["message"]
        http.post("/v1/chat/completions", json=body)  # the prompt is cached from here on, for both
        plain = http.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
        predicted = http.post("/v1/chat/completions", json={
            **body, "prediction": {"type": "content", "content": "Hello! How can I help you today?"}})
        assert predicted.status_code == 200 and predicted.json()["choices"][0]["message"]["content"] == plain
