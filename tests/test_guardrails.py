"""Guardrails on chat completions through a live server: the default model (SmolLM2) and the
default moderation set-up (the shipped head over multilingual-e5-small, plus the PII rules).

One server for the module (no auth: the development workspace, capturing traces), read back
through its own SQLite database (usage rows, traces) and /metrics. A blocked request through the
mistralai SDK: 403 in Mistral's shape, a usage row marked blocked with no tokens, a blocked trace,
no token generated (the token counters of the model do not move). `action: none` reports the
scores; an output guardrail stops a stream with an error event; redaction; block_on_error.
Output checks use thresholds of 0 (every score is above) or 1 (none is) so that what the small
model happens to write cannot decide them.
"""

import json
import time
from pathlib import Path

import httpx
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import MistralError
from prometheus_client.parser import text_string_to_metric_families
from server_process import DEFAULT_MODEL, default_model_entry
from sqlalchemy import select

from plateforme.models.registry import ModelRegistry
from plateforme.moderation.categories import CATEGORIES_2603
from plateforme.storage.database import default_url, open_database
from plateforme.storage.tables import UsageRecord
from plateforme.storage.trace_tables import ChatTrace

E5 = "multilingual-e5-small"
THREAT = "I'm going to find you tonight and kill you and your whole family."
BENIGN = "What is the capital of France?"
BLOCK = [{"moderation_llm_v2": {"action": "block"}}]


def _output_rule(threshold: float) -> list[dict]:
    return [{"moderation_llm_v2": {"action": "block", "apply_to": ["output"], "ignore_other_categories": True,
                                   "custom_category_thresholds": {"sexual": threshold}}}]


@pytest.fixture(scope="module")
def server(start_server):
    e5 = ModelRegistry.from_file(None).get(E5).model_dump(exclude_defaults=True)
    return start_server([default_model_entry(parallel=2, max_queue=8, threads=1), e5])


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=120) as client:
        r = client.patch("/v1/admin/workspaces/ws_default", json={"capture_traces": True})
        assert r.status_code == 200, r.text
        yield client


@pytest.fixture(scope="module")
def sdk(server, http):
    with Mistral(api_key="unused", server_url=server.url) as client:
        yield client


@pytest.fixture(scope="module")
def db(server):
    database = open_database(default_url(Path(server.env["PLATEFORME_DATA_DIR"])))
    yield database
    database.dispose()


def _metric(http, name: str, **labels) -> float:
    text = http.get("/metrics").text
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def _usage(db, request_id: str | None = None, **where) -> list[UsageRecord]:
    query = select(UsageRecord).where(UsageRecord.route == "chat").order_by(UsageRecord.id)
    if request_id is not None:
        query = query.where(UsageRecord.request_id == request_id)
    for column, value in where.items():
        query = query.where(getattr(UsageRecord, column) == value)
    with db.session() as s:
        return list(s.scalars(query))


def _eventually(read, timeout: float = 10.0):
    """What `read` returns once it is truthy (background writes: cut streams' usage, traces)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _trace(db, completion_id: str | None = None, blocked: bool | None = None) -> ChatTrace | None:
    query = select(ChatTrace).order_by(ChatTrace.id.desc())
    if completion_id is not None:
        query = query.where(ChatTrace.completion_id == completion_id)
    if blocked is not None:
        query = query.where(ChatTrace.blocked.is_(blocked))
    with db.session() as s:
        return s.scalars(query).first()


def _events(http, body: dict) -> list:
    """The SSE payloads of a stream (dicts, and the string "[DONE]")."""
    out = []
    with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: "):
                data = line[len("data: "):]
                out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_a_blocked_request_is_a_403_recorded_as_blocked_and_generates_nothing(sdk, http, db):
    tokens_before = _metric(http, "plateforme_tokens_total", model=DEFAULT_MODEL)
    refused_before = _metric(http, "plateforme_generations_ended_total", model=DEFAULT_MODEL, outcome="refused")
    blocked_before = len(_usage(db, blocked=True))
    with pytest.raises(MistralError) as caught:
        sdk.chat.complete(model=DEFAULT_MODEL, messages=[{"role": "user", "content": THREAT}], max_tokens=16,
                          guardrails=BLOCK)
    assert caught.value.status_code == 403
    body = json.loads(caught.value.body)
    assert {k: body[k] for k in ("object", "type", "code")} == {"object": "error", "type": "forbidden", "code": "403"}
    assert "violence_and_threats" in body["message"] and "guardrails[0].moderation_llm_v2" in body["message"]
    (report,) = body["guardrails"]
    assert report["blocked"] and "violence_and_threats" in report["crossed"] and report["stage"] == "input"

    rows = _usage(db, blocked=True)
    assert len(rows) == blocked_before + 1
    row = rows[-1]
    assert (row.model, row.prompt_tokens, row.completion_tokens) == (DEFAULT_MODEL, 0, 0)
    assert row.guardrail_tokens > 0  # what the moderation head read
    # No generation: the model's token counters did not move; the refusal is counted as such.
    assert _metric(http, "plateforme_tokens_total", model=DEFAULT_MODEL) == tokens_before
    assert _metric(http, "plateforme_generations_ended_total", model=DEFAULT_MODEL,
                   outcome="refused") == refused_before + 1
    trace = _eventually(lambda: _trace(db, row.request_id))
    assert trace is not None and trace.blocked and trace.response["type"] == "forbidden"
    assert trace.request["messages"][0]["content"] == THREAT and trace.guardrails[0]["blocked"]
    # A stream is refused the same way, before it starts: a 403, not an event stream.
    r = http.post("/v1/chat/completions", json={"model": DEFAULT_MODEL, "stream": True, "guardrails": BLOCK,
                                                "messages": [{"role": "user", "content": THREAT}]})
    assert r.status_code == 403 and r.json()["guardrails"][0]["blocked"], r.text
    assert _metric(http, "plateforme_tokens_total", model=DEFAULT_MODEL) == tokens_before
    # The workspace's usage report counts the blocked requests and the tokens the checks read.
    (usage,) = [u for u in http.get("/v1/usage", params={"group_by": "model"}).json()["data"]
                if u["model"] == DEFAULT_MODEL]
    assert usage["blocked_requests"] >= 2 and usage["guardrail_tokens"] > 0, usage


def test_action_none_answers_with_the_scores(sdk, http, db):
    seconds_before = _metric(http, "plateforme_guardrail_seconds_count", stage="input")
    r = http.post("/v1/chat/completions", json={
        "model": DEFAULT_MODEL, "messages": [{"role": "user", "content": THREAT}], "max_tokens": 4,
        "guardrails": [{"moderation_llm_v2": {"action": "none"}},
                       {"moderation_llm_v1": {"custom_category_thresholds": {"violence_and_threats": 1.0}}}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["message"]["content"] and body["usage"]["completion_tokens"] > 0
    v2, v1 = body["guardrails"]
    assert set(v2["category_scores"]) == set(CATEGORIES_2603) and set(v2["checked"]) == set(CATEGORIES_2603)
    assert "violence_and_threats" in v2["crossed"] and v2["blocked"] is False and v2["categories"]["violence_and_threats"]
    assert v1["type"] == "moderation_llm_v1" and "dangerous_and_criminal_content" in v1["category_scores"]
    assert v1["thresholds"]["violence_and_threats"] == 1.0 and "violence_and_threats" not in v1["crossed"]
    assert v1["category_scores"]["violence_and_threats"] == v2["category_scores"]["violence_and_threats"]
    (row,) = _usage(db, body["id"])
    assert not row.blocked and row.guardrail_tokens > 0 and row.completion_tokens == body["usage"]["completion_tokens"]
    assert _metric(http, "plateforme_guardrail_seconds_count", stage="input") == seconds_before + 1
    # The SDK sends the same request (and ignores the extra field of the answer).
    answer = sdk.chat.complete(model=DEFAULT_MODEL, messages=[{"role": "user", "content": BENIGN}], max_tokens=4,
                               guardrails=[{"moderation_llm_v2": {"action": "none"}}])
    assert answer.choices[0].message.content


def test_an_output_guardrail_stops_a_stream_with_an_error_event(http, db):
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Tell me a long story about a cat."}],
            "max_tokens": 120, "temperature": 0}
    events = _events(http, {**body, "guardrails": _output_rule(0.0)})
    *chunks, error = events
    assert "[DONE]" not in events and error["object"] == "error" and error["code"] == "403"
    assert "the output crossed" in error["message"] and "sexual" in error["message"]
    assert error["guardrails"][0]["stage"] == "output" and error["guardrails"][0]["blocked"]
    assert chunks and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks if c["choices"]) == ""  # nothing past it
    completion_id = chunks[0]["id"]
    row = _eventually(lambda: _usage(db, completion_id))[0]  # billed in the background: what was generated
    assert row.blocked and row.completion_tokens > 0
    trace = _eventually(lambda: _trace(db, completion_id))
    assert trace.blocked and trace.response["withheld"][0]["content"]

    # Under a threshold of 1 nothing crosses: the whole answer, the report on the last chunk.
    events = _events(http, {**body, "max_tokens": 40, "guardrails": _output_rule(1.0)})
    assert events[-1] == "[DONE]"
    last = events[-2]
    assert last["usage"]["completion_tokens"] > 0 and last["guardrails"][0]["stage"] == "output"
    assert last["guardrails"][0]["crossed"] == [] and not last["guardrails"][0]["blocked"]
    assert "".join(c["choices"][0]["delta"]["content"] for c in events[:-1] if c["choices"])
    assert _metric(http, "plateforme_guardrail_seconds_count", stage="output") >= 2


def test_a_whole_answer_that_crosses_an_output_guardrail_is_withheld(http, db):
    blocked_before = _metric(http, "plateforme_generations_ended_total", model=DEFAULT_MODEL, outcome="blocked")
    r = http.post("/v1/chat/completions", json={"model": DEFAULT_MODEL, "max_tokens": 8,
                                                "messages": [{"role": "user", "content": BENIGN}],
                                                "guardrails": _output_rule(0.0)})
    assert r.status_code == 403 and "the output crossed" in r.json()["message"], r.text
    row = _usage(db, blocked=True)[-1]
    assert row.completion_tokens > 0  # generated, billed, withheld
    trace = _eventually(lambda: _trace(db, row.request_id))
    assert trace.blocked and trace.response["withheld"][0]["content"]
    assert _metric(http, "plateforme_generations_ended_total", model=DEFAULT_MODEL,
                   outcome="blocked") == blocked_before + 1


def test_redact_replaces_pii_before_generation_and_in_the_trace(http, db):
    email, iban = "jeanne.martin@exemple.fr", "FR76 3000 6000 0112 3456 7890 189"
    r = http.post("/v1/chat/completions", json={
        "model": DEFAULT_MODEL, "max_tokens": 24, "temperature": 0,
        "messages": [{"role": "user", "content": f"My email is {email} and my IBAN is {iban}. "
                                                 "Repeat my email address and my IBAN."}],
        "guardrails": [{"moderation_llm_v2": {"action": "redact"}}]})
    assert r.status_code == 200, r.text
    body = r.json()
    (report,) = body["guardrails"]
    assert report["redacted"] == {"email": 1, "iban": 1} and report["categories"]["pii"]  # scored as sent
    answer = body["choices"][0]["message"]["content"]
    assert email not in answer and "3000 6000" not in answer
    trace = _eventually(lambda: _trace(db, body["id"]))
    stored = trace.request["messages"][0]["content"]
    assert "[EMAIL]" in stored and "[IBAN]" in stored and email not in stored
    assert not trace.blocked and trace.guardrails[0]["redacted"] == {"email": 1, "iban": 1}


def test_block_on_error_refuses_what_could_not_be_checked(http):
    # Longer than the moderation embeddings take (32 windows of 512 tokens): the check fails.
    huge = "word " * 20000
    body = {"model": DEFAULT_MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": huge}]}
    strict = http.post("/v1/chat/completions", json={
        **body, "guardrails": [{"block_on_error": True, "moderation_llm_v2": {"action": "none"}}]})
    assert strict.status_code == 403 and "could not be checked" in strict.json()["message"], strict.text
    assert strict.json()["guardrails"][0]["error"]
    # Without it the request goes on unchecked, to the model (whose context it does not fit).
    lenient = http.post("/v1/chat/completions", json={**body, "guardrails": BLOCK})
    assert lenient.status_code == 400 and lenient.json()["type"] == "context_length_exceeded", lenient.text


def test_bad_guardrails_are_400s_naming_the_field(sdk, http):
    with pytest.raises(MistralError) as caught:
        sdk.chat.complete(model=DEFAULT_MODEL, messages=[{"role": "user", "content": BENIGN}],
                          guardrails=[{"moderation_llm_v2": {"custom_category_thresholds": {"pii": 1.5}}}])
    assert caught.value.status_code == 400 and "pii: 1.5 is out of range" in caught.value.body
    r = http.post("/v1/chat/completions", json={
        "model": DEFAULT_MODEL, "messages": [{"role": "user", "content": BENIGN}],
        "guardrails": [{"moderation_llm_v1": {"custom_category_thresholds": {"jailbreaking": 0.5}}}]})
    assert r.status_code == 400 and r.json()["param"].endswith("custom_category_thresholds.jailbreaking"), r.text
    r = http.post("/v1/chat/completions", json={
        "model": DEFAULT_MODEL, "messages": [{"role": "user", "content": BENIGN}],
        "guardrails": [{"moderation_llm_v2": {"model_name": "nope"}}]})
    assert r.status_code == 400 and "not a moderation model" in r.json()["message"], r.text
