"""The cost of rate limits on the request path: in-memory windows against shared PostgreSQL counters.

For each backend: microseconds per `Billing.admit` (the limits check a billable request pays
before its work: workspace and key windows, one database round trip in the thread pool with
shared counters) and per `Billing.record` (the usage row plus, when shared, the token counters),
one request at a time and with 16 requests at once on the event loop (per request, wall time /
requests). Starts a private PostgreSQL server (tests/postgres_server.py) unless --database-url is
given; prints a table and writes JSON to benchmarks/results/.

    python benchmarks/bench_limits.py [--requests 2000] [--database-url postgresql://...]
"""

import argparse
import asyncio
import json
import platform
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from plateforme.storage.database import open_database  # noqa: E402
from plateforme.storage.tables import Workspace  # noqa: E402
from plateforme.tenancy.principal import Principal  # noqa: E402
from plateforme.usage.billing import Billing  # noqa: E402

RESULTS = Path(__file__).parent / "results"
CONCURRENCY = 16


def _prepare(url: str) -> None:
    db = open_database(url)
    with db.session() as s:
        if s.get(Workspace, "ws_bench") is None:
            # Limits high enough never to refuse: what is measured is the counting.
            s.add(Workspace(id="ws_bench", name="bench", created_at=datetime.now(UTC), budget_period="month",
                            requests_per_minute=10**9, tokens_per_minute=10**9))
            s.commit()
    db.dispose()


async def _measure(billing: Billing, requests: int) -> dict:
    who = Principal(workspace_id="ws_bench", key_id="key_bench", user_id=None, role="member",
                    requests_per_minute=10**9, tokens_per_minute=10**9)
    await billing.admit(who)  # warm: workspace cached, connections open
    out = {}
    start = time.perf_counter()
    for _ in range(requests):
        await billing.admit(who)
    out["admit_us"] = (time.perf_counter() - start) / requests * 1e6
    start = time.perf_counter()
    for _ in range(requests // 4):
        await billing.record(who, "m", "chat", f"req-{uuid.uuid4().hex}", 10, 5)
    out["record_us"] = (time.perf_counter() - start) / (requests // 4) * 1e6

    async def burst(n: int) -> None:
        for _ in range(n):
            await billing.admit(who)

    start = time.perf_counter()
    await asyncio.gather(*(burst(requests // CONCURRENCY) for _ in range(CONCURRENCY)))
    done = requests // CONCURRENCY * CONCURRENCY
    out[f"admit_us_{CONCURRENCY}_concurrent"] = (time.perf_counter() - start) / done * 1e6
    return out


def _run(url: str, backend: str, requests: int) -> dict:
    _prepare(url)
    db = open_database(url)
    try:
        return asyncio.run(_measure(Billing(db, backend), requests))
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--database-url", help="a PostgreSQL database (default: a private server)")
    args = parser.parse_args()
    server = None
    url = args.database_url
    if url is None:
        from postgres_server import PostgresServer

        server = PostgresServer()
        url = server.create_database("bench_limits")
    try:
        results = {backend: _run(url, backend, args.requests) for backend in ("memory", "database")}
    finally:
        if server is not None:
            server.stop()
    print(f"{'backend':10} {'admit us':>10} {'record us':>10} {f'admit us ({CONCURRENCY} at once)':>24}")
    for backend, r in results.items():
        print(f"{backend:10} {r['admit_us']:10.1f} {r['record_us']:10.1f} {r[f'admit_us_{CONCURRENCY}_concurrent']:24.1f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench_limits-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"machine": platform.platform(), "requests": args.requests,
                               "database": "postgresql", "results": results}, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
