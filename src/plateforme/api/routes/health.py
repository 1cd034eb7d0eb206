"""GET /health: each model worker's real state, probed by a one-token generation."""

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from plateforme.engines.probe import probe_worker

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    pool = request.app.state.pool
    timeout = request.app.state.settings.health_probe_timeout
    models = await asyncio.gather(*(probe_worker(w, timeout) for w in pool.workers.values()))
    healthy = all(m["ok"] for m in models)
    body = {"status": "ok" if healthy else "unavailable", "models": list(models)}
    return JSONResponse(body, status_code=200 if healthy else 503,
                        headers=None if healthy else {"Retry-After": "2"})
