"""Health of one model worker, checked by generating a token, not by trusting a status flag."""

import time

from plateforme.engines.errors import EngineRejected, EngineUnavailable
from plateforme.engines.pool import ModelWorker
from plateforme.engines.supervisor import WorkerState

PROBE_REQUEST = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1, "temperature": 0}


async def probe_worker(worker: ModelWorker, timeout_s: float) -> dict:
    sup = worker.supervisor
    report = {
        "model": worker.spec.name,
        "state": sup.state.value,
        "pid": sup.pid,
        "restarts": sup.restarts,
        "in_flight": worker.admission.in_flight,
        "queued": worker.admission.queued,
        "ok": False,
    }
    if sup.state is not WorkerState.READY:
        report["error"] = sup.last_error or f"worker is {sup.state.value}"
        return report
    started = time.perf_counter()
    try:
        result = await worker.client().chat(PROBE_REQUEST, timeout=timeout_s)
        report["ok"] = result["usage"]["completion_tokens"] >= 1
        report["probe_ms"] = round((time.perf_counter() - started) * 1000, 1)
    except (EngineUnavailable, EngineRejected) as exc:
        report["error"] = f"generation probe failed: {exc}"
    return report
