"""Start one model's worker process, watch it, and restart it with backoff when it dies."""

import asyncio
import collections
import enum
import logging
import socket
import sys
import time
from dataclasses import dataclass

import httpx

from plateforme.models.spec import ModelSpec

log = logging.getLogger("plateforme.supervisor")

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
# A worker that stayed up this long resets the backoff: its next crash restarts it at once.
STABLE_AFTER_S = 60.0


class WorkerState(str, enum.Enum):
    STARTING = "starting"
    READY = "ready"
    DOWN = "down"
    STOPPED = "stopped"


@dataclass(frozen=True)
class WorkerStatus:
    """What /health and /metrics report of one worker process."""
    state: WorkerState
    pid: int | None
    restarts: int
    last_error: str | None


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkerSupervisor:
    """Owns the worker process of one model; `base_url` is where it answers when READY."""

    def __init__(self, spec: ModelSpec, start_timeout: float, extra_args: list[str] | None = None):
        self.spec = spec
        self.extra_args = list(extra_args or [])  # more worker arguments (LoRA adapters)
        self.start_timeout = start_timeout
        self.state = WorkerState.STOPPED
        self.pid: int | None = None
        self.base_url: str | None = None
        self.restarts = 0
        self.last_error: str | None = None
        self.next_start_at: float | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._log_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

    def command(self, port: int) -> list[str]:
        cmd = [
            sys.executable, "-m", "plateforme.engines.llamacpp_worker",
            "--model", str(self.spec.weights_path()),
            "--port", str(port),
            "--context-length", str(self.spec.context_length),
            "--parallel", str(self.spec.parallel),
        ]
        if self.spec.threads:
            cmd += ["--threads", str(self.spec.threads)]
        if self.spec.speculative != "none":
            cmd += ["--speculative", self.spec.speculative]
        return cmd + self.extra_args

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"supervise:{self.spec.name}")

    async def wait_ready(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def status(self) -> WorkerStatus:
        return WorkerStatus(self.state, self.pid, self.restarts, self.last_error)

    def retry_after_s(self) -> int:
        """Seconds a client should wait before retrying while the worker is not READY."""
        if self.next_start_at is not None:
            return max(1, int(self.next_start_at - time.monotonic()) + 2)
        return 2

    async def stop(self) -> None:
        self.state = WorkerState.STOPPED
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._terminate()

    async def _supervise(self) -> None:
        backoff = BACKOFF_FIRST_S
        while True:
            started = time.monotonic()
            await self._run_once()
            if time.monotonic() - started > STABLE_AFTER_S:
                backoff = BACKOFF_FIRST_S
            self.restarts += 1
            self.next_start_at = time.monotonic() + backoff
            log.warning("worker of %s is down (%s); restarting in %.1fs",
                        self.spec.name, self.last_error, backoff)
            await asyncio.sleep(backoff)
            self.next_start_at = None
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _run_once(self) -> None:
        self.state = WorkerState.STARTING
        self._ready.clear()
        port = free_loopback_port()
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self.command(port),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except Exception as exc:  # missing weights, exec failure: report and retry
            self.state = WorkerState.DOWN
            self.last_error = str(exc)
            return
        self.pid = self._process.pid
        reader = asyncio.create_task(self._read_log(self._process))
        url = f"http://127.0.0.1:{port}"
        if await self._wait_healthy(url):
            self.base_url = url
            self.state = WorkerState.READY
            self.last_error = None
            self._ready.set()
            log.info("worker of %s ready (pid %s, %s)", self.spec.name, self.pid, url)
        rc = await self._process.wait()
        await asyncio.gather(reader, return_exceptions=True)
        self.state = WorkerState.DOWN
        self._ready.clear()
        self.base_url = None
        self.pid = None
        tail = " | ".join(list(self._log_tail)[-3:])
        if self.last_error is None or not self.last_error.startswith("worker did not"):
            self.last_error = f"worker exited with code {rc}" + (f": {tail}" if tail else "")

    async def _wait_healthy(self, url: str) -> bool:
        deadline = time.monotonic() + self.start_timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline and self._process.returncode is None:
                try:
                    if (await client.get(f"{url}/health")).status_code == 200:
                        return True
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        if self._process.returncode is None:
            self.last_error = f"worker did not become healthy within {self.start_timeout:.0f}s"
            await self._terminate()
        return False

    async def _read_log(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self._log_tail.append(line)
                log.debug("[%s worker] %s", self.spec.name, line)

    async def _terminate(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
