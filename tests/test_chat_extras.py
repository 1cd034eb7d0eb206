"""prefix, safe_prompt, min_tokens, logprobs, and stop sequences that span token boundaries."""

from conftest import PARIS_MESSAGES
from spec_schema import validate


def _post(http, model, **body):
    r = http.post("/v1/chat/completions", json={"model": model, "temperature": 0, **body})
    assert r.status_code == 200, r.text
    validate(r.json(), "ChatCompletionResponse")
    return r.json()


def test_stop_sequence_spanning_tokens(http, model):
    full = _post(http, model, messages=PARIS_MESSAGES, max_tokens=30)["choices"][0]["message"]["content"]
    assert "capital of France" in full
    body = _post(http, model, messages=PARIS_MESSAGES, max_tokens=30, stop=["al of Fr"])
    text = body["choices"][0]["message"]["content"]
    assert text == full[:full.index("al of Fr")] and body["choices"][0]["finish_reason"] == "stop"


def test_prefix_continues_the_assistant_message(http, model):
    prefix = "The capital of France is"
    messages = PARIS_MESSAGES + [{"role": "assistant", "content": prefix, "prefix": True}]
    text = _post(http, model, messages=messages, max_tokens=10)["choices"][0]["message"]["content"]
    assert text.startswith(prefix) and "Paris" in text[len(prefix):]
    streamed = ""
    with http.stream("POST", "/v1/chat/completions", json={
            "model": model, "messages": messages, "max_tokens": 10, "temperature": 0, "stream": True}) as r:
        import json
        for line in r.iter_lines():
            if line.startswith("data: {"):
                streamed += "".join(c["delta"].get("content") or "" for c in json.loads(line[6:])["choices"])
    assert streamed == text


def test_min_tokens_delays_the_end(http, model):
    messages = [{"role": "user", "content": "Say hi."}]
    short = _post(http, model, messages=messages, max_tokens=200)
    assert short["choices"][0]["finish_reason"] == "stop"
    floor = short["usage"]["completion_tokens"] + 15
    longer = _post(http, model, messages=messages, max_tokens=200, min_tokens=floor)
    assert longer["usage"]["completion_tokens"] >= floor
    assert longer["choices"][0]["message"]["content"].startswith(short["choices"][0]["message"]["content"][:5])


def test_logprobs(http, model):
    body = _post(http, model, messages=PARIS_MESSAGES, max_tokens=5, logprobs=True, top_logprobs=3)
    content = body["choices"][0]["logprobs"]["content"]
    assert len(content) == 5
    assert "".join(t["token"] for t in content) == body["choices"][0]["message"]["content"]
    for token in content:
        assert token["logprob"] <= 0 and len(token["top_logprobs"]) == 3
        assert token["top_logprobs"][0]["logprob"] >= token["top_logprobs"][-1]["logprob"]


def test_safe_prompt_changes_the_prompt(http, model):
    plain = _post(http, model, messages=PARIS_MESSAGES, max_tokens=1)
    safe = _post(http, model, messages=PARIS_MESSAGES, max_tokens=1, safe_prompt=True)
    assert safe["usage"]["prompt_tokens"] > plain["usage"]["prompt_tokens"] + 20


def test_unsupported_spec_fields_are_named(http, model):
    r = http.post("/v1/chat/completions", json={"model": model, "messages": PARIS_MESSAGES,
                                                 "guardrails": [{"name": "x"}]})
    assert r.status_code == 400 and "guardrails" in r.json()["message"]
