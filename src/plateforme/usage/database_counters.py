"""Rate counters in the database, shared by every gateway replica on it (PostgreSQL, or SQLite).

Each request is counted with one statement, an atomic upsert that returns the scope's counts:
`INSERT ... ON CONFLICT (scope) DO UPDATE ... RETURNING`. A scope row holds the current fixed
window (Unix time // window) and the previous one; the sliding minute is estimated from them
(previous window weighted by the part of it still inside the last minute, plus the current one).
A request found over a limit is taken back out (a second statement, on refusals only), so a
refused request never uses anyone's quota; meanwhile a concurrent request of the same scope may
see it counted, so near a limit the platform errs on refusing, never on admitting too many.
Token counts are added after the request, with the same upsert.

Windows come from the replicas' clocks (keep them synchronised, NTP); a replica a little behind
counts into the newest window already written, so skew never resets a window. Every call is
blocking I/O: the gateway runs it in its thread pool.
"""

import time

from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from plateforme.storage.database import Database
from plateforme.usage.rate_scopes import WINDOW_S, Scope, refuse

_SAME = "excluded.window_no <= c.window_no"
_NEXT = "excluded.window_no = c.window_no + 1"


def _upsert(n: int) -> str:
    values = ", ".join(f"(:s{i}, :w, :r, :t, 0, 0)" for i in range(n))
    return (
        "INSERT INTO rate_counters AS c (scope, window_no, requests, tokens, prev_requests, prev_tokens) "
        f"VALUES {values} ON CONFLICT (scope) DO UPDATE SET "
        f"prev_requests = CASE WHEN {_SAME} THEN c.prev_requests WHEN {_NEXT} THEN c.requests ELSE 0 END, "
        f"prev_tokens = CASE WHEN {_SAME} THEN c.prev_tokens WHEN {_NEXT} THEN c.tokens ELSE 0 END, "
        f"requests = CASE WHEN {_SAME} THEN c.requests + excluded.requests ELSE excluded.requests END, "
        f"tokens = CASE WHEN {_SAME} THEN c.tokens + excluded.tokens ELSE excluded.tokens END, "
        "window_no = CASE WHEN excluded.window_no > c.window_no THEN excluded.window_no ELSE c.window_no END "
        "RETURNING scope, window_no, requests, tokens, prev_requests, prev_tokens"
    )


_UPSERTS = {n: text(_upsert(n)) for n in (1, 2)}
_TAKE_BACK = text("UPDATE rate_counters SET requests = requests - 1 "
                  "WHERE scope = :scope AND window_no = :w AND requests > 0")


def _wait_s(prev: float, current: float, limit: int, window_no: int, length: float, now: float) -> float:
    """Seconds until prev * (1 - elapsed fraction) + current drops below `limit`."""
    start = window_no * length
    if limit <= 0:  # nothing is ever allowed: ask again in a window
        return length
    if current < limit:  # within this window, as the previous one's weight fades
        fraction = 1 - (limit - current) / prev
        return max(0.0, start + length * fraction - now)
    # after this window: `current` becomes the previous window, fading the same way
    return max(0.0, start + length * (2 - limit / current) - now)


def _statement_engine(db: Database):
    """Connections for single atomic statements: on PostgreSQL, autocommit (no BEGIN/COMMIT round
    trips) and a pool of their own without the checkout ping and the rollback on return, so a count
    costs one round trip (a dead pooled connection is retried once instead of pinged each time)."""
    if db.engine.dialect.name != "postgresql":
        return db.engine  # SQLite: its own transactions (with its busy timeout) serialise the writers
    return create_engine(db.engine.url, isolation_level="AUTOCOMMIT", pool_size=10, max_overflow=20,
                         pool_reset_on_return=None)


class DatabaseCounters:
    blocking = True  # database round trips: run in the thread pool

    def __init__(self, db: Database, window_s: float = WINDOW_S, clock=time.time):
        self._engine = _statement_engine(db)
        self._db_engine = db.engine
        self.window_s = window_s
        self._clock = clock  # Unix time, the same on every replica

    def tracked(self) -> int:
        return 0  # nothing kept in this process

    def close(self) -> None:
        """Close the connections of its own pool (PostgreSQL); SQLite shares the database's."""
        if self._engine is not self._db_engine:
            self._engine.dispose()

    def _add(self, names: list[str], requests: int, tokens: int, now: float) -> list:
        params = {"w": int(now // self.window_s), "r": requests, "t": tokens}
        params.update({f"s{i}": name for i, name in enumerate(names)})
        return self._execute(_UPSERTS[len(names)], params)

    def hit(self, scopes: list[Scope]) -> None:
        """Count one request in every scope, or raise RateLimited (taking it back) when one is full."""
        now = self._clock()
        scopes = sorted(scopes, key=lambda s: s.name)  # one lock order for every replica: no deadlock
        rows = {row.scope: row for row in self._add([s.name for s in scopes], 1, 0, now)}
        for scope in scopes:
            row = rows[scope.name]
            weight = 1 - min(1.0, max(0.0, (now - row.window_no * self.window_s) / self.window_s))
            # Requests beyond the limit in this window can only be refused ones being taken back.
            requests = row.requests - 1 if scope.rpm is None else min(row.requests - 1, scope.rpm)
            for what, limit, prev, current in (("requests", scope.rpm, row.prev_requests, requests),
                                               ("tokens", scope.tpm, row.prev_tokens, row.tokens)):
                if limit is not None and prev * weight + current >= limit:
                    self._take_back(rows.values())
                    refuse(scope, what, _wait_s(prev, current, limit, row.window_no, self.window_s, now))

    def _take_back(self, rows) -> None:
        self._execute(_TAKE_BACK, [{"scope": row.scope, "w": row.window_no} for row in rows])

    def _execute(self, statement, params):
        """One statement, retried once on a fresh connection when a pooled one turns out dead."""
        for attempt in (1, 2):
            try:
                with self._engine.begin() as conn:  # (autocommit on PostgreSQL: no BEGIN is sent)
                    result = conn.execute(statement, params)
                    return result.all() if result.returns_rows else None
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise

    def add_tokens(self, names: list[str], tokens: int) -> None:
        if tokens > 0:
            self._add(sorted(names), 0, tokens, self._clock())
