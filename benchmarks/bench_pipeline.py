"""The request pipeline's own cost per request: limits, guards, capture switch, usage write.

Drives `RequestPipeline.complete` on a real database (SQLite in a temporary directory, the
default single-gateway set-up) with a scripted generation service that answers at once (no
engine: what is measured is everything around the generation), against the same service called
bare, alternating the two round by round. Also times the engine admission gate (enter + exit of
an uncontended `Admission.admit`). Prints microseconds per request and writes JSON to
benchmarks/results/.

    python benchmarks/bench_pipeline.py [--requests 2000] [--rounds 5]
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from plateforme.chat.types import ChatRequest, Choice, Completion, Usage
from plateforme.engines.admission import Admission
from plateforme.observability.metrics import Metrics
from plateforme.pipeline.call import GenerationCall
from plateforme.pipeline.request_pipeline import RequestPipeline
from plateforme.storage.database import open_database
from plateforme.storage.blobs.local import LocalBlobStore
from plateforme.files.service import FileService
from plateforme.tenancy.accounts import Accounts
from plateforme.traces.service import TraceService
from plateforme.usage.billing import Billing

RESULTS = Path(__file__).parent / "results"


class ScriptedChat:
    """Answers every request at once with the same completion (no engine)."""

    async def complete(self, req, tally=None) -> Completion:
        return Completion([Choice(0, "hello", "stop")], Usage(12, 3))

    async def stream(self, req, tally=None):  # pragma: no cover - not measured here
        yield Usage(12, 3)


def _request() -> ChatRequest:
    return ChatRequest(model="bench", messages=[{"role": "user", "content": "hi"}], max_tokens=3)


async def _per_request_us(work, count: int) -> float:
    began = time.perf_counter()
    for _ in range(count):
        await work()
    return (time.perf_counter() - began) / count * 1e6


async def main(requests: int, rounds: int) -> dict:
    data = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    db = open_database(f"sqlite:///{data / 'plateforme.db'}")
    accounts = Accounts(db)
    workspace = accounts.create_workspace("bench", requests_per_minute=10**9, tokens_per_minute=10**12)
    user = accounts.create_user(workspace.id, "bench@example.com")
    _, token = accounts.create_key(user.id)
    who = accounts.authenticate(token)
    metrics = Metrics()
    service = ScriptedChat()
    traces = TraceService(db, FileService(db, LocalBlobStore(data / "blobs"), 1 << 20))
    pipeline = RequestPipeline(Billing(db), traces, metrics, {"chat": service})
    admission = Admission("bench", slots=4, max_queue=16)

    async def bare():
        await service.complete(_request())

    async def piped():
        await pipeline.complete(GenerationCall(who, "chat", _request()))

    async def admitted():
        async with admission.admit(who.workspace_id):
            pass

    await piped()  # warm: the workspace's limits are read once, then cached
    samples: dict[str, list[float]] = {"bare": [], "pipeline": [], "admission": []}
    for _ in range(rounds):
        samples["bare"].append(await _per_request_us(bare, requests))
        samples["pipeline"].append(await _per_request_us(piped, requests))
        samples["admission"].append(await _per_request_us(admitted, requests))
    stages = {}
    for family in metrics.registry.collect():
        if family.name == "plateforme_pipeline_seconds":
            sums = {s.labels["stage"]: s.value for s in family.samples if s.name.endswith("_sum")}
            counts = {s.labels["stage"]: s.value for s in family.samples if s.name.endswith("_count")}
            stages = {stage: sums[stage] / counts[stage] * 1e6 for stage in sums if counts.get(stage)}
    median = {name: statistics.median(values) for name, values in samples.items()}
    result = {
        "requests_per_round": requests, "rounds": rounds, "database": "sqlite",
        "bare_service_us": round(median["bare"], 1),
        "pipeline_us": round(median["pipeline"], 1),
        "pipeline_own_cost_us": round(median["pipeline"] - median["bare"], 1),
        "stage_us": {stage: round(us, 1) for stage, us in stages.items()},
        "engine_admission_us": round(median["admission"], 1),
    }
    db.dispose()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    out = asyncio.run(main(args.requests, args.rounds))
    print(f"pipeline's own cost per request: {out['pipeline_own_cost_us']} us "
          f"(pipeline {out['pipeline_us']} us vs bare service {out['bare_service_us']} us; SQLite)")
    for stage, us in out["stage_us"].items():
        print(f"  stage {stage:7} {us:8.1f} us")
    print(f"  engine admission gate (enter + exit, uncontended): {out['engine_admission_us']} us")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline.json").write_text(json.dumps(out, indent=2))
