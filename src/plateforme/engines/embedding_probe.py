"""/health for embedding engines: the engine embeds one short text, checked for its dimension.

Same sharing, caching and busy rules as the generation probe (engines/probe.py); only what is
asked of the engine differs.
"""

import asyncio
import time

import numpy as np

from plateforme.engines.errors import EngineRejected, EngineUnavailable
from plateforme.engines.probe import ProbeResult, WorkerProbe


class EmbeddingProbe(WorkerProbe):
    async def _generate(self, pid: int | None, timeout_s: float) -> ProbeResult:
        self.generations += 1
        started = time.perf_counter()
        try:
            batch = await asyncio.wait_for(self.worker.client().embed(["ping"], "query"), timeout_s)
        except TimeoutError:
            return ProbeResult(pid, False, time.monotonic(), error=f"embedding probe took over {timeout_s:.0f}s")
        except (EngineUnavailable, EngineRejected) as exc:
            return ProbeResult(pid, False, time.monotonic(), error=f"embedding probe failed: {exc}")
        ms = round((time.perf_counter() - started) * 1000, 1)
        want = self.worker.spec.dimension
        shape = tuple(batch.vectors.shape)
        if want is not None and shape != (1, want):
            error = f"embedding probe returned shape {shape}, the model's config says dimension {want}"
        elif not np.isfinite(batch.vectors).all():
            error = "embedding probe returned non-finite values"
        else:
            error = None
        return ProbeResult(pid, error is None, time.monotonic(), probe_ms=ms, error=error)
