"""What every engine whose server this gateway runs itself has in common (llama.cpp, vLLM).

A supervisor starts the server process and restarts it on failure; requests pass an admission
gate; `client()` is the client of the server now running, replaced (and the old one closed once
idle) when the supervisor restarted the server on another port.
"""

from abc import ABC, abstractmethod

from plateforme.engines.admission import Admission
from plateforme.engines.errors import EngineUnavailable
from plateforme.engines.probe import WorkerProbe
from plateforme.engines.retired_clients import RetiredClients
from plateforme.engines.supervisor import WorkerState, WorkerStatus
from plateforme.models.spec import ModelSpec


class SupervisedEngine(ABC):
    kind: str
    server_label = "worker"  # how an unavailable server is named in errors

    def __init__(self, spec: ModelSpec, supervisor, engine_timeout: float):
        self.spec = spec
        self.name = spec.name
        self.supervisor = supervisor
        self.admission = Admission(spec.name, spec.parallel, spec.max_queue)
        self.probe = WorkerProbe(self)
        self._engine_timeout = engine_timeout
        self._client = None
        self._retired = RetiredClients()

    @abstractmethod
    def _new_client(self, base_url: str):
        """A client of the server answering at `base_url`."""

    def start(self) -> None:
        self.supervisor.start()

    def status(self) -> WorkerStatus:
        return self.supervisor.status()

    def client(self):
        """The client of the running server, or EngineUnavailable saying why there is none."""
        sup = self.supervisor
        if sup.state is not WorkerState.READY or sup.base_url is None:
            reason = f": {sup.last_error}" if sup.last_error else ""
            raise EngineUnavailable(
                f"model {self.spec.name!r} is not available ({self.server_label} {sup.state.value}{reason})",
                retry_after_s=sup.retry_after_s(),
            )
        if self._client is None or self._client.base_url != sup.base_url:
            if self._client is not None:  # the server was restarted: the old process is gone
                self._retired.retire(self._client)
            self._client = self._new_client(sup.base_url)
        return self._client

    async def close(self) -> None:
        await self.supervisor.stop()
        await self._retired.close_all()
        if self._client is not None:
            await self._client.close()
