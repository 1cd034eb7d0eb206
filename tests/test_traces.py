"""Opt-in traces of chat completions, feedback on them, and fine-tuning datasets exported from them:
live servers with real keys, on SQLite and PostgreSQL."""

import json
import time
from pathlib import Path

import httpx
import pytest
from cli_in_process import CliResult, run_cli
from conftest import PARIS_MESSAGES, database_env
from gguf_copy import copy_with_fim_tokens
from mistral_served import FIM_IDS
from server_process import DEFAULT_MODEL, default_model_entry
from sqlalchemy import select

from plateforme.models.registry import ModelRegistry
from plateforme.storage.database import default_url, open_database
from plateforme.storage.trace_tables import ChatTrace

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
                                                          "required": ["city"]}}}]
FIM_MODEL = "smollm2-fim"


@pytest.fixture(scope="module")
def fim_gguf(tmp_path_factory) -> Path:
    """The default model with StarCoder-style FIM tokens, to show that FIM completions are not traced."""
    src = ModelRegistry.from_file(None).get(DEFAULT_MODEL).weights_path()
    return copy_with_fim_tokens(src, tmp_path_factory.mktemp("fim") / "smollm2-fim.gguf", FIM_IDS)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def platform(start_server, request, fim_gguf):
    # One thread per worker: two workers share the test machine's cores with whatever else runs there.
    models = [default_model_entry(parallel=2, max_queue=8, threads=1),
              default_model_entry(name=FIM_MODEL, path=str(fim_gguf), parallel=1, max_queue=4, aliases=[], threads=1)]
    return start_server(models=models, env={"PLATEFORME_NO_AUTH": "false", **database_env(request, request.param)})


@pytest.fixture(scope="module")
def traces_db(platform):
    """The server's own database, read directly: what was (not) stored."""
    db = open_database(platform.env.get("PLATEFORME_DATABASE_URL")
                       or default_url(Path(platform.env["PLATEFORME_DATA_DIR"])))
    yield db
    db.dispose()


def _admin(server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=server.headers, timeout=300)


def _team(server, name: str) -> tuple[str, dict]:
    """A workspace and the auth headers of a member key in it."""
    with _admin(server) as admin:
        ws = admin.post("/v1/admin/workspaces", json={"name": name})
        assert ws.status_code == 200, ws.text
        assert ws.json()["capture_traces"] is False  # off by default
        user = admin.post(f"/v1/admin/workspaces/{ws.json()['id']}/users", json={"email": f"dev@{name}.example"})
        key = admin.post("/v1/admin/keys", json={"user_id": user.json()["id"], "name": "dev"}).json()["key"]
    return ws.json()["id"], {"Authorization": f"Bearer {key}"}


def _capture(server, ws: str, on: bool) -> None:
    with _admin(server) as admin:
        r = admin.patch(f"/v1/admin/workspaces/{ws}", json={"capture_traces": on})
    assert r.status_code == 200 and r.json()["capture_traces"] is on, r.text


def _chat(server, headers, **extra) -> dict:
    body = {"model": DEFAULT_MODEL, "messages": PARIS_MESSAGES, "max_tokens": 8, "temperature": 0, **extra}
    r = httpx.post(f"{server.url}/v1/chat/completions", headers=headers, json=body, timeout=300)
    assert r.status_code == 200, r.text
    return r.json()


def _stream(server, headers, **extra) -> tuple[str, list[dict]]:
    """(completion id, the chunks the client received)."""
    body = {"model": DEFAULT_MODEL, "messages": PARIS_MESSAGES, "max_tokens": 8, "temperature": 0, "stream": True,
            **extra}
    chunks = []
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", headers=headers, json=body, timeout=300) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line[6:]))
    return chunks[0]["id"], chunks


def _feedback(server, headers, completion_id: str, body) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/chat/completions/{completion_id}/feedback", headers=headers, timeout=60,
                      **({"content": body} if isinstance(body, str) else {"json": body}))


def _traces(db, ws: str) -> list[ChatTrace]:
    with db.session() as s:
        return list(s.scalars(select(ChatTrace).where(ChatTrace.workspace_id == ws).order_by(ChatTrace.id)))


def _wait_traces(db, ws: str, count: int) -> list[ChatTrace]:
    """Traces are written just after the answer, off its latency path."""
    deadline = time.monotonic() + 10
    while len(rows := _traces(db, ws)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return rows


def test_nothing_is_captured_unless_an_admin_turns_it_on(platform, traces_db):
    ws, headers = _team(platform, "private")
    completion = _chat(platform, headers)
    stream_id, _ = _stream(platform, headers)
    time.sleep(0.5)
    assert _traces(traces_db, ws) == []
    r = _feedback(platform, headers, completion["id"], {"rating": 1})
    assert r.status_code == 404 and r.json()["object"] == "error" and "capture" in r.json()["message"]
    assert _feedback(platform, headers, stream_id, {"rating": 1}).status_code == 404
    # Turned on, then off again: only the completion made in between is kept.
    _capture(platform, ws, True)
    kept = _chat(platform, headers)["id"]
    _capture(platform, ws, False)
    _chat(platform, headers)
    _stream(platform, headers)
    time.sleep(0.5)
    assert [t.completion_id for t in _traces(traces_db, ws)] == [kept]
    with _admin(platform) as admin:
        events = admin.get("/v1/admin/audit", params={"workspace_id": ws}).json()["data"]
    assert [e["detail"] for e in events if e["action"] == "workspace.capture_traces"] == \
        [{"capture_traces": False}, {"capture_traces": True}]


def test_non_streaming_and_streaming_completions_are_captured_whole(platform, traces_db):
    ws, headers = _team(platform, "traced")
    _capture(platform, ws, True)
    answer = _chat(platform, headers)
    stream_id, chunks = _stream(platform, headers)
    called_id, called = _stream(platform, headers, tools=TOOLS, tool_choice="any", max_tokens=200,
                                messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    rows = _wait_traces(traces_db, ws, 3)
    assert [t.completion_id for t in rows] == [answer["id"], stream_id, called_id]
    plain, streamed, tool_call = rows

    assert plain.request == {"model": DEFAULT_MODEL, "messages": PARIS_MESSAGES, "max_tokens": 8, "temperature": 0}
    assert plain.stream is False and plain.model == DEFAULT_MODEL and plain.api_key_id
    assert plain.response["choices"] == [{"index": 0, "finish_reason": answer["choices"][0]["finish_reason"],
                                          "message": {"role": "assistant",
                                                      "content": answer["choices"][0]["message"]["content"]}}]
    assert plain.response["usage"] == answer["usage"] and plain.response["id"] == answer["id"]

    assert streamed.stream is True and streamed.request["stream"] is True
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text and streamed.response["choices"][0]["message"] == {"role": "assistant", "content": text}
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert [streamed.response["choices"][0]["finish_reason"]] == finish
    assert streamed.response["usage"] == chunks[-1]["usage"]

    sent_calls = [call for c in called if c["choices"] for call in c["choices"][0]["delta"].get("tool_calls") or []]
    assert sent_calls and tool_call.request["tools"] == TOOLS
    assert tool_call.response["choices"][0]["message"]["tool_calls"] == sent_calls
    assert tool_call.response["choices"][0]["finish_reason"] == "tool_calls"


def test_fim_completions_are_not_traced(platform, traces_db):
    ws, headers = _team(platform, "fim-team")
    _capture(platform, ws, True)
    for stream in (False, True):
        r = httpx.post(f"{platform.url}/v1/fim/completions", headers=headers, timeout=60,
                       json={"model": FIM_MODEL, "prompt": "def add(a, b):", "max_tokens": 4, "stream": stream})
        assert r.status_code == 200, r.text
    _chat(platform, headers)
    assert len(_wait_traces(traces_db, ws, 1)) == 1
    time.sleep(0.3)
    assert len(_traces(traces_db, ws)) == 1


def test_feedback_is_per_workspace_and_the_latest_wins(platform, traces_db):
    ws, headers = _team(platform, "raters")
    _, stranger = _team(platform, "strangers")
    _capture(platform, ws, True)
    completion_id = _chat(platform, headers)["id"]
    # Sent at once: the trace may still be on its way to the database, and is waited for.
    first = _feedback(platform, headers, completion_id, {"rating": -1, "corrected_answer": "Paris.",
                                                         "comment": "too long"})
    assert first.status_code == 200, first.text
    assert first.json() | {"created_at": 0} == {"object": "chat.completion.feedback", "completion_id": completion_id,
                                                "rating": -1, "corrected_answer": "Paris.", "comment": "too long",
                                                "created_at": 0}
    for other, cid in [(stranger, completion_id), (headers, "cmpl-" + "0" * 32), (headers, "nope")]:
        r = _feedback(platform, other, cid, {"rating": 1})
        assert r.status_code == 404, r.text
        assert r.json()["object"] == "error" and r.json()["type"] == "not_found" and cid in r.json()["message"]
    for bad in [{"rating": 0}, {"rating": 2}, {"rating": "1"}, {"rating": True}, {"rating": 1.0}, {},
                {"rating": 1, "corrected_answer": ""}, {"rating": 1, "extra": 1}, "{not json", "[]"]:
        r = _feedback(platform, headers, completion_id, bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["object"] == "error" and r.json()["code"] == "400", r.text
    assert "rating" in _feedback(platform, headers, completion_id, {"rating": 5}).json()["message"]
    latest = _feedback(platform, headers, completion_id, {"rating": 1})
    assert latest.status_code == 200
    (trace,) = _traces(traces_db, ws)
    assert (trace.rating, trace.corrected_answer, trace.comment) == (1, None, None)


def _export(server, headers, body=None) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/datasets/export", headers=headers, timeout=60,
                      **({} if body is None else {"json": body}))


def _lines(server, headers, file_id: str) -> list[dict]:
    r = httpx.get(f"{server.url}/v1/files/{file_id}/content", headers=headers, timeout=60)
    assert r.status_code == 200
    return [json.loads(line) for line in r.text.splitlines()]


def test_export_turns_liked_and_corrected_traces_into_a_fine_tuning_file(platform, traces_db):
    ws, headers = _team(platform, "curators")
    _, stranger = _team(platform, "onlookers")
    assert _export(platform, headers).status_code == 400  # nothing captured yet: the message says what to do
    _capture(platform, ws, True)
    liked, corrected, disliked, _unrated, fixed_dislike = (_chat(platform, headers, max_tokens=4 + i) for i in range(5))
    tool_id, _ = _stream(platform, headers, tools=TOOLS, tool_choice="any", max_tokens=200,
                         messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    for completion, feedback in [(liked, {"rating": 1}), (corrected, {"rating": 1, "corrected_answer": "Paris!"}),
                                 (disliked, {"rating": -1, "comment": "wrong"}),
                                 (fixed_dislike, {"rating": -1, "corrected_answer": "It is Paris."})]:
        assert _feedback(platform, headers, completion["id"], feedback).status_code == 200
    assert _feedback(platform, headers, tool_id, {"rating": 1}).status_code == 200

    r = _export(platform, headers)
    assert r.status_code == 200, r.text
    exported = r.json()
    assert exported["purpose"] == "fine-tune" and exported["num_lines"] == 4 and exported["filename"].endswith(".jsonl")
    # The very object the Files API gives for this id, which any fine-tuning job can take.
    assert httpx.get(f"{platform.url}/v1/files/{exported['id']}", headers=headers).json() == exported
    listed = httpx.get(f"{platform.url}/v1/files", headers=headers, params={"purpose": "fine-tune"}).json()
    assert exported["id"] in [f["id"] for f in listed["data"]]
    assert httpx.get(f"{platform.url}/v1/files/{exported['id']}", headers=stranger).status_code == 404

    def answer(c):
        return c["choices"][0]["message"]["content"]

    lines = _lines(platform, headers, exported["id"])
    assert lines[:3] == [{"messages": [*PARIS_MESSAGES, {"role": "assistant", "content": answer(liked)}]},
                         {"messages": [*PARIS_MESSAGES, {"role": "assistant", "content": "Paris!"}]},
                         {"messages": [*PARIS_MESSAGES, {"role": "assistant", "content": "It is Paris."}]}]
    tool_line = lines[3]
    assert tool_line["tools"] == TOOLS
    (call,) = tool_line["messages"][-1]["tool_calls"][:1]
    assert call["function"]["name"] == "get_weather" and isinstance(call["function"]["arguments"], str)
    assert "city" in json.loads(call["function"]["arguments"])

    only_liked = _export(platform, headers, {"include": ["liked"]}).json()
    assert only_liked["num_lines"] == 2 and only_liked["id"] != exported["id"]
    only_corrected = _lines(platform, headers, _export(platform, headers, {"include": ["corrected"]}).json()["id"])
    assert [line["messages"][-1]["content"] for line in only_corrected] == ["Paris!", "It is Paris."]
    later = _export(platform, headers, {"since": "2999-01-01T00:00:00Z"})
    assert later.status_code == 400 and "since" in later.json()["message"]
    assert _export(platform, headers, {"since": "2000-01-01T00:00:00+02:00"}).json()["num_lines"] == 4
    for bad in [{"include": []}, {"include": ["disliked"]}, {"since": "yesterday"}, {"bogus": 1}]:
        assert _export(platform, headers, bad).status_code == 400, bad
    assert _export(platform, stranger).status_code == 400  # their workspace has no traces


def _cli(server, *args: str) -> CliResult:
    return run_cli(*args, env=server.env)  # in the test process: the same code without a subprocess's imports


def test_cli_turns_capture_on_and_exports(platform, traces_db, tmp_path):
    ws, headers = _team(platform, "cli-team")
    assert "cli-team: trace capture on" in platform.admin("workspaces", "capture", "cli-team", "on")
    time.sleep(2.5)  # a running server re-reads the switch within 2 s
    completion = _chat(platform, headers)
    assert _feedback(platform, headers, completion["id"], {"rating": 1, "corrected_answer": "Paris."}).status_code == 200
    listing = platform.admin("workspaces", "list")
    assert any("cli-team" in row and row.endswith("on") for row in listing.splitlines())

    out = tmp_path / "data.jsonl"
    done = _cli(platform, "datasets", "export", "--workspace", "cli-team", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert "exported 1 lines (0 liked, 1 corrected)" in done.stderr
    assert [json.loads(line) for line in out.read_text().splitlines()] == \
        [{"messages": [*PARIS_MESSAGES, {"role": "assistant", "content": "Paris."}]}]
    assert "exported 0 lines" in _cli(platform, "datasets", "export", "--workspace", ws, "--include", "liked").stderr

    uploaded = _cli(platform, "datasets", "export", "--workspace", "cli-team", "--upload")
    assert uploaded.returncode == 0, uploaded.stderr
    file_id = uploaded.stdout.strip()
    assert f"to file {file_id}" in uploaded.stderr
    assert _lines(platform, headers, file_id) == [json.loads(out.read_text())]
    missing = _cli(platform, "datasets", "export", "--workspace", "no-such-team")
    assert missing.returncode != 0 and "not found" in missing.stderr

    assert "trace capture off" in platform.admin("workspaces", "capture", ws, "off")
    time.sleep(2.5)
    _chat(platform, headers)
    time.sleep(0.5)
    assert len(_traces(traces_db, ws)) == 1
