"""One llama.cpp worker serving every LoRA fine-tune of one base model.

The worker holds the base weights once and all adapters (a few MB each); each request switches
on its own adapter (`lora` body field). Changing the set of adapters starts a new worker
(blue-green): requests move to it once it is healthy, and the old one is stopped when its slots
are idle (requests already streaming from it finish there) or after a grace period.
"""

import asyncio
import logging
from pathlib import Path

import httpx

from plateforme.engines.admission import Admission
from plateforme.engines.errors import EngineUnavailable
from plateforme.engines.openai_client import OpenAIEngineClient
from plateforme.engines.probe import WorkerProbe
from plateforme.engines.retired_clients import RetiredClients
from plateforme.engines.supervisor import WorkerState, WorkerStatus, WorkerSupervisor
from plateforme.models.spec import ModelSpec

log = logging.getLogger("plateforme.adapters")
IDLE_POLL_S = 0.5


class _Generation:
    """One worker process and its adapter list (adapter i of `adapters` is llama.cpp's id i)."""

    def __init__(self, spec: ModelSpec, adapters: list[Path], start_timeout: float):
        self.adapters = adapters
        args = [arg for path in adapters for arg in ("--lora", str(path))]
        self.supervisor = WorkerSupervisor(spec, start_timeout, extra_args=args)
        self.client: OpenAIEngineClient | None = None

    async def start(self, timeout: float, max_connections: int, engine_timeout: float) -> None:
        self.supervisor.start()
        if not await self.supervisor.wait_ready(timeout):
            error = self.supervisor.last_error or f"not ready within {timeout:.0f}s"
            await self.supervisor.stop()
            raise EngineUnavailable(f"the fine-tune worker of {self.supervisor.spec.name!r} failed to start: {error}")
        self.client = OpenAIEngineClient(self.supervisor.base_url, max_connections, engine_timeout)

    async def busy(self) -> bool:
        """Whether a request is still being processed (llama.cpp's /slots)."""
        url = self.supervisor.base_url
        if url is None:
            return False
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                slots = (await http.get(f"{url}/slots")).json()
        except (httpx.HTTPError, ValueError):
            return False
        return any(slot.get("is_processing") for slot in slots)

    async def close(self) -> None:
        await self.supervisor.stop()
        if self.client is not None:
            await self.client.close()


class AdapterHost:
    def __init__(self, spec: ModelSpec, start_timeout: float, engine_timeout: float):
        self.spec = spec
        self.name = f"ft:{spec.name}"  # how /health and /metrics name the fine-tunes of `spec`
        self.admission = Admission(f"{spec.name} (fine-tunes)", spec.parallel, spec.max_queue)
        self.probe = WorkerProbe(self)
        self._start_timeout, self._engine_timeout = start_timeout, engine_timeout
        self._current: _Generation | None = None
        self._retiring: set[asyncio.Task] = set()
        self._retired_clients = RetiredClients()
        self._wanted: list[Path] = []  # the adapters it should serve (being started, or served)
        self._start_error: str | None = None
        self._past_restarts = 0  # crash restarts of the processes it has replaced

    @property
    def adapters(self) -> list[Path]:
        return list(self._current.adapters) if self._current else []

    def expect(self, paths: list[Path]) -> None:
        """Say which adapters are about to be served, so health reports the host as starting."""
        if self._current is None:
            self._wanted = [Path(p) for p in paths]

    def status(self) -> WorkerStatus | None:
        """The state of the process serving now; STARTING/DOWN before the first one is up; None when
        there is nothing to serve."""
        current = self._current
        if current is not None:
            sup = current.supervisor.status()
            return WorkerStatus(sup.state, sup.pid, self._past_restarts + sup.restarts, sup.last_error)
        if not self._wanted:
            return None
        state = WorkerState.DOWN if self._start_error else WorkerState.STARTING
        return WorkerStatus(state, None, self._past_restarts, self._start_error)

    async def set_adapters(self, paths: list[Path]) -> None:
        """Serve exactly `paths` (no worker at all for none)."""
        paths = [Path(p) for p in paths]
        if self._current is not None and self._current.adapters == paths:
            return
        self._wanted = paths
        new = None
        if paths:
            new = _Generation(self.spec, paths, self._start_timeout)
            self._start_error = None
            try:
                await new.start(self._start_timeout, self.admission.capacity + 4, self._engine_timeout)
            except EngineUnavailable as exc:
                self._start_error = str(exc)
                raise
        old, self._current = self._current, new
        log.info("fine-tunes of %s: serving %d adapter(s)", self.spec.name, len(paths))
        if old is not None:
            self._past_restarts += old.supervisor.restarts
            task = asyncio.create_task(self._retire(old))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _retire(self, generation: _Generation) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._engine_timeout
        try:
            await asyncio.sleep(IDLE_POLL_S)  # requests that took the old client just before the switch
            while loop.time() < deadline and await generation.busy():
                await asyncio.sleep(IDLE_POLL_S)
        finally:  # also when the host closes meanwhile: the old process never outlives it
            await generation.close()

    def client(self) -> OpenAIEngineClient:
        current = self._current
        if current is None or current.client is None:
            raise EngineUnavailable(f"no fine-tune of {self.spec.name!r} is being served yet", retry_after_s=2)
        sup = current.supervisor
        if sup.state is not WorkerState.READY:
            reason = f": {sup.last_error}" if sup.last_error else ""
            raise EngineUnavailable(f"the fine-tune worker of {self.spec.name!r} is {sup.state.value}{reason}",
                                    retry_after_s=sup.retry_after_s())
        if current.client.base_url != sup.base_url:  # restarted by its supervisor after a crash
            self._retired_clients.retire(current.client)  # its process is gone
            current.client = OpenAIEngineClient(sup.base_url, self.admission.capacity + 4, self._engine_timeout)
        return current.client

    def lora_field(self, path: Path) -> list[dict]:
        """The `lora` request field that switches on `path` alone in the current worker."""
        adapters = self.adapters
        if Path(path) not in adapters:
            raise EngineUnavailable(f"adapter {Path(path).name} is not loaded yet", retry_after_s=2)
        chosen = adapters.index(Path(path))
        return [{"id": i, "scale": 1.0 if i == chosen else 0.0} for i in range(len(adapters))]

    async def close(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        await self._retired_clients.close_all()
        self._wanted = []
        if self._current is not None:
            await self._current.close()
            self._current = None
