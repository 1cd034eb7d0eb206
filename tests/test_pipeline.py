"""The request pipeline driven directly, as batch jobs, agent loops and evaluations will drive it.

One gateway app runs in this process (its lifespan on a background event loop, the default model
on a real llama.cpp worker, SQLite): completions asked through `app.state.pipeline` with a
principal, no HTTP request, are limited, billed and traced exactly like the same request sent to
the HTTP route, and share the same limits windows.
"""

import asyncio
import functools

import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from prometheus_client.parser import text_string_to_metric_families
from server_process import DEFAULT_MODEL, default_model_entry
from sqlalchemy import select, update

from plateforme.api.app import create_app
from plateforme.api.schemas.chat import ChatCompletionRequest
from plateforme.chat.types import Delta, Usage
from plateforme.models.registry import ModelRegistry
from plateforme.models.spec import ModelSpec
from plateforme.pipeline.call import GenerationCall
from plateforme.pipeline.guards import RequestRefused
from plateforme.settings import Settings
from plateforme.storage.tables import UsageRecord, Workspace
from plateforme.storage.trace_tables import ChatTrace
from plateforme.usage.limits import RateLimited

MESSAGES = [{"role": "user", "content": "Say hello."}]
BODY = {"model": DEFAULT_MODEL, "messages": MESSAGES, "max_tokens": 4, "temperature": 0}


class Gateway:
    """The app, a portal into its event loop, and a key of a fresh workspace per test."""

    def __init__(self, app, portal):
        self.app, self.portal = app, portal
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")

    def workspace(self, name: str, **limits):
        accounts = self.app.state.accounts
        workspace = accounts.create_workspace(name, **limits)
        with self.app.state.db.session() as s:
            s.execute(update(Workspace).where(Workspace.id == workspace.id).values(capture_traces=True))
            s.commit()
        user = accounts.create_user(workspace.id, f"dev@{name}.example")
        _, token = accounts.create_key(user.id)
        return accounts.authenticate(token), {"Authorization": f"Bearer {token}"}

    def run(self, coroutine_function, *args, **kwargs):
        return self.portal.call(functools.partial(coroutine_function, *args, **kwargs))

    def usage_rows(self, workspace_id: str) -> list[UsageRecord]:
        with self.app.state.db.session() as s:
            return list(s.scalars(select(UsageRecord).where(UsageRecord.workspace_id == workspace_id)
                                  .order_by(UsageRecord.id)))

    def traces(self, workspace_id: str) -> list[ChatTrace]:
        self.run(self.app.state.traces.recorder.flush)
        with self.app.state.db.session() as s:
            return list(s.scalars(select(ChatTrace).where(ChatTrace.workspace_id == workspace_id)
                                  .order_by(ChatTrace.id)))

    def metric(self, name: str, **labels) -> float:
        text = self.app.state.metrics.render()[0].decode()
        return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    data = tmp_path_factory.mktemp("pipeline")
    settings = Settings(data_dir=data, config=None)
    registry = ModelRegistry([ModelSpec(**default_model_entry(parallel=2, max_queue=4))])
    app = create_app(settings, registry)
    with start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(app.router.lifespan_context(app)):
            gw = Gateway(app, portal)
            worker = app.state.pool.get(DEFAULT_MODEL)
            portal.call(_wait_ready, worker)
            yield gw
            portal.call(gw.http.aclose)


async def _wait_ready(worker, timeout: float = 120) -> None:
    for _ in range(int(timeout / 0.2)):
        if worker.status().state.value == "ready":
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"worker not ready: {worker.status()}")


def _call(principal, **extra) -> GenerationCall:
    body = ChatCompletionRequest.model_validate({**BODY, **extra})
    return GenerationCall(principal, "chat", body.to_chat_request(), traced=body)


def test_a_direct_completion_is_limited_billed_and_traced_like_an_http_one(gateway):
    who, headers = gateway.workspace("pipeline-direct", requests_per_minute=3)
    pipeline = gateway.app.state.pipeline
    admitted_before = gateway.metric("plateforme_pipeline_seconds_count", stage="admit")

    http = gateway.run(gateway.http.post, "/v1/chat/completions", json=BODY, headers=headers)
    assert http.status_code == 200, http.text
    direct = gateway.run(pipeline.complete, _call(who))
    assert direct.choices[0].content and direct.usage.completion_tokens > 0

    async def stream_all():
        return [item async for item in await pipeline.stream(_call(who, stream=True))]

    streamed = gateway.run(stream_all)
    assert isinstance(streamed[-1], Usage) and any(isinstance(d, Delta) and d.content for d in streamed)

    # The same limits window holds HTTP and direct calls: the fourth in the minute is refused either way.
    with pytest.raises(RateLimited, match="3 requests per minute"):
        gateway.run(pipeline.complete, _call(who))
    refused = gateway.run(gateway.http.post, "/v1/chat/completions", json=BODY, headers=headers)
    assert refused.status_code == 429 and refused.headers["Retry-After"]

    rows = gateway.usage_rows(who.workspace_id)
    assert [r.route for r in rows] == ["chat", "chat", "chat"]
    assert rows[0].request_id == http.json()["id"]
    assert {r.api_key_id for r in rows} == {who.key_id} and {r.model for r in rows} == {DEFAULT_MODEL}
    assert rows[1].prompt_tokens == http.json()["usage"]["prompt_tokens"] == direct.usage.prompt_tokens
    assert rows[1].completion_tokens == direct.usage.completion_tokens
    assert rows[2].completion_tokens == streamed[-1].completion_tokens

    traces = gateway.traces(who.workspace_id)
    assert [t.completion_id for t in traces] == [r.request_id for r in rows]
    assert [t.stream for t in traces] == [False, False, True]
    assert traces[1].response["choices"][0]["message"]["content"] == direct.choices[0].content
    assert traces[1].request == traces[0].request  # the request as sent, whoever sent it
    assert gateway.metric("plateforme_pipeline_seconds_count", stage="admit") - admitted_before == 3
    assert gateway.metric("plateforme_pipeline_seconds_count", stage="record") >= 3


def test_a_stream_left_by_a_direct_caller_is_billed_what_was_generated(gateway):
    who, _ = gateway.workspace("pipeline-left")
    pipeline = gateway.app.state.pipeline
    gone_before = gateway.metric("plateforme_generations_ended_total", outcome="client_gone")

    async def leave_after_two_deltas():
        events = await pipeline.stream(_call(who, stream=True, max_tokens=200, min_tokens=200))
        seen = 0
        async for item in events:
            seen += bool(isinstance(item, Delta) and item.content)
            if seen == 2:
                break
        await events.aclose()
        for _ in range(100):  # the cut usage is written in the background
            if gateway.usage_rows(who.workspace_id):
                return
            await asyncio.sleep(0.05)

    gateway.run(leave_after_two_deltas)
    rows = gateway.usage_rows(who.workspace_id)
    assert len(rows) == 1 and rows[0].prompt_tokens > 0 and 2 <= rows[0].completion_tokens < 200
    assert gateway.metric("plateforme_generations_ended_total", outcome="client_gone") == gone_before + 1
    assert gateway.traces(who.workspace_id) == []  # a cut stream is not a trace


class _Refuse:
    name = "test-guard"

    def __init__(self):
        self.seen: list[str] = []

    async def check(self, call: GenerationCall) -> None:
        self.seen.append(call.id)
        if "forbidden" in call.request.messages[-1]["content"]:
            raise RequestRefused(self.name, "the message says forbidden")


def test_a_guard_refuses_before_any_generation_for_every_caller(gateway):
    who, headers = gateway.workspace("pipeline-guarded")
    pipeline = gateway.app.state.pipeline
    guard = _Refuse()
    pipeline.guards.append(guard)
    try:
        bad = [{"role": "user", "content": "something forbidden"}]
        with pytest.raises(RequestRefused, match="test-guard"):
            gateway.run(pipeline.complete, _call(who, messages=bad))
        r = gateway.run(gateway.http.post, "/v1/chat/completions", json={**BODY, "messages": bad, "stream": True},
                        headers=headers)
        assert r.status_code == 403 and r.json()["type"] == "forbidden" and "test-guard" in r.json()["message"]
        assert gateway.usage_rows(who.workspace_id) == []  # a refusal costs nothing
        ok = gateway.run(pipeline.complete, _call(who))
        assert ok.usage.completion_tokens > 0 and len(guard.seen) == 3
    finally:
        pipeline.guards.remove(guard)
