"""GET /health: every worker's real state (base models and fine-tune adapter hosts), probed by a
one-token generation (shared and briefly reused, see engines/probe.py).

Admin keys see each worker's details (pid, restarts, requests in flight, probe time); other keys
see only whether each model is up.
"""

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from plateforme.engines.probe import probe_worker

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    pool, settings = request.app.state.pool, request.app.state.settings
    reports = await asyncio.gather(*(probe_worker(w, settings.health_probe_timeout, settings.health_cache_s)
                                     for w in pool.every_worker()))
    healthy = all(r["ok"] for r in reports)
    if not request.state.principal.is_admin:
        reports = [{"model": r["model"], "ok": r["ok"]} for r in reports]
    body = {"status": "ok" if healthy else "unavailable", "models": list(reports)}
    return JSONResponse(body, status_code=200 if healthy else 503,
                        headers=None if healthy else {"Retry-After": "2"})
