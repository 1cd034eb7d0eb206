"""Rate limits shared by gateway replicas on one database (usage/database_counters.py), on SQLite
and PostgreSQL: each replica is its own Database (engine and connection pool) on the same URL."""

import asyncio
import threading
from datetime import UTC, datetime

import pytest

from plateforme.storage.database import open_database
from plateforme.storage.tables import Workspace
from plateforme.tenancy.principal import Principal
from plateforme.usage import billing as billing_module
from plateforme.usage.billing import Billing
from plateforme.usage.database_counters import DatabaseCounters
from plateforme.usage.memory_counters import MemoryCounters
from plateforme.usage.rate_scopes import RateLimited, Scope


@pytest.fixture
def replicas(database_url):
    dbs = [open_database(database_url), open_database(database_url)]
    yield dbs
    for db in dbs:
        db.dispose()


def _workspace(db, rpm=None, tpm=None, budget=None) -> Workspace:
    workspace = Workspace(id="ws_1", name="team", created_at=datetime.now(UTC), budget_period="month",
                          requests_per_minute=rpm, tokens_per_minute=tpm, token_budget=budget)
    with db.session() as s:
        s.add(workspace)
        s.commit()
    return workspace


def _principal(key: str | None = None, rpm: int | None = None) -> Principal:
    return Principal(workspace_id="ws_1", key_id=key, user_id=None, role="member", requests_per_minute=rpm)


def test_an_rpm_limit_holds_exactly_across_replicas_under_concurrency(replicas):
    counters = [DatabaseCounters(db) for db in replicas]
    scope = [Scope("ws:ws_1", 10, None, "workspace")]
    admitted, refused, failed = [], [], []

    def send(i: int) -> None:
        try:
            counters[i % 2].hit(scope)
            admitted.append(i)
        except RateLimited as exc:
            refused.append(exc.retry_after_s)
        except Exception as exc:  # reported below, not lost with the thread
            failed.append(repr(exc))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failed, failed
    assert len(admitted) == 10 and len(refused) == 14
    assert all(1 <= r <= 61 for r in refused)


def test_a_refused_request_uses_no_quota_of_its_other_scopes(replicas):
    a, b = DatabaseCounters(replicas[0]), DatabaseCounters(replicas[1])
    workspace = Scope("ws:ws_1", 5, None, "workspace")
    busy_key, other_key = Scope("key:k1", 2, None, "API key"), Scope("key:k2", None, None, "API key")
    for _ in range(2):
        a.hit([workspace, busy_key])
    for _ in range(6):  # the busy key is over its own limit: refused, and the workspace is not charged
        with pytest.raises(RateLimited, match="API key limit of 2 requests per minute"):
            b.hit([workspace, busy_key])
    for _ in range(3):  # so another key still has the workspace's 3 remaining requests
        b.hit([workspace, other_key])
    with pytest.raises(RateLimited, match="workspace limit of 5 requests per minute"):
        a.hit([workspace, other_key])


def test_tokens_per_minute_count_what_every_replica_recorded(replicas):
    a, b = DatabaseCounters(replicas[0]), DatabaseCounters(replicas[1])
    scope = [Scope("ws:ws_1", None, 100, "workspace")]
    a.hit(scope)
    a.add_tokens(["ws:ws_1"], 60)
    b.hit(scope)  # 60 < 100: admitted
    b.add_tokens(["ws:ws_1"], 45)
    with pytest.raises(RateLimited, match="workspace limit of 100 tokens per minute"):
        a.hit(scope)


def test_the_previous_window_fades_out_of_the_sliding_minute(replicas):
    now = [6000.0 * 60]  # the start of a window
    counters = DatabaseCounters(replicas[0], clock=lambda: now[0])
    scope = [Scope("ws:ws_1", 10, None, "workspace")]
    for _ in range(10):
        counters.hit(scope)
    now[0] += 60 + 15  # a quarter into the next window: the previous one weighs 0.75 (7.5 requests)
    for _ in range(3):  # 7.5 + 0, 1, 2 before each: under 10
        counters.hit(scope)
    with pytest.raises(RateLimited) as refused:  # 7.5 + 3
        counters.hit(scope)
    assert refused.value.retry_after_s == 4  # 10 * (1 - f) + 3 < 10 once f > 0.3, i.e. 18 s in: 3 s from now
    now[0] += 30  # three quarters in: the previous window weighs 2.5 requests
    for _ in range(5):  # 2.5 + 3..7
        counters.hit(scope)
    with pytest.raises(RateLimited):  # 2.5 + 8
        counters.hit(scope)


def test_billing_picks_shared_counters_on_postgresql_or_when_asked(database_url):
    db = open_database(database_url)
    try:
        expected = DatabaseCounters if db.engine.dialect.name == "postgresql" else MemoryCounters
        assert isinstance(Billing(db).limiter.counters, expected)
        assert isinstance(Billing(db, "database").limiter.counters, DatabaseCounters)
        assert isinstance(Billing(db, "memory").limiter.counters, MemoryCounters)
        with pytest.raises(ValueError, match="PLATEFORME_LIMITS_BACKEND='redis'"):
            Billing(db, "redis")
    finally:
        db.dispose()


def test_billing_replicas_share_limits_and_budget(replicas, monkeypatch):
    monkeypatch.setattr(billing_module, "BUDGET_REFRESH_SECONDS", 0.0)
    _workspace(replicas[0], rpm=4, budget=100)
    a, b = Billing(replicas[0], "database"), Billing(replicas[1], "database")
    who = _principal()

    async def scenario():
        await a.admit(who)
        await b.admit(who)
        await b.record(who, "m", "chat", "req-1", 40, 70)  # over the budget, recorded through replica b
        await a.admit(who)  # a still had the spend of 0: it re-reads it in the background meanwhile
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not a._budget_loading:
                break
        with pytest.raises(RateLimited, match="token budget of 100 per month is spent"):
            await a.admit(who)

    asyncio.run(scenario())
    # requests per minute: 3 counted so far in the shared window, 1 left whichever replica takes it
    b.limiter.budgets._used.clear()
    with replicas[0].session() as s:
        s.get(Workspace, "ws_1").token_budget = None
        s.commit()
    a.forget("ws_1")
    b.forget("ws_1")

    async def rpm():
        await b.admit(who)
        with pytest.raises(RateLimited, match="workspace limit of 4 requests per minute"):
            await a.admit(who)

    asyncio.run(rpm())
