"""Engine `vllm`: the vLLM server process of one model, started, watched and restarted.

The llama.cpp supervisor's loop as it is (a free loopback port per start, READY once `/health`
answers, restarts with backoff, the log tail in `last_error`), with what vLLM needs beside it:
the `import vllm` check before the first start (a clear error instead of a crash loop's tail),
its own command (engines/vllm_command.py) with an API key it generates (handed over in a
private file, so no other user of the machine can call the server), a start timeout of its own
(loading and compiling take minutes), and a stop that also ends vLLM's engine and worker
processes should the server leave them behind (when it crashes too: they would keep its log pipe
open, and its exit unseen).
"""

import asyncio
import logging
import os
import secrets
import shutil
import signal
import tempfile
from pathlib import Path

from plateforme.engines.supervisor import WorkerState, WorkerSupervisor
from plateforme.engines.vllm_command import launch_command, vllm_import_error
from plateforme.models.spec import ModelSpec

log = logging.getLogger("plateforme.supervisor")
WATCH_EVERY_S = 1.0
STOP_GRACE_S = 10.0


def _start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (tells a process from a later one with its number)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, start time) of every process below `pid` (Linux /proc), deepest last."""
    found: list[tuple[int, str]] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                started = _start_time(child)
                if started is not None:
                    found.append((child, started))
                    pending.append(child)
    return found


def _kill_left_behind(processes: list[tuple[int, str]]) -> None:
    for pid, started in processes:
        if _start_time(pid) == started:  # still the same process: left behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


async def _exited(process: asyncio.subprocess.Process, timeout_s: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while process.returncode is None and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    return process.returncode is not None


class VLLMSupervisor(WorkerSupervisor):
    """Owns the vLLM server of one `engine: vllm` model; `api_key` is what requests must send."""

    def __init__(self, spec: ModelSpec):
        super().__init__(spec, spec.vllm.start_timeout_s)
        self.api_key = secrets.token_urlsafe(32)
        self._key_dir: Path | None = None
        self._vllm_checked = False

    def command(self, port: int) -> list[str]:
        if self._key_dir is None:
            self._key_dir = Path(tempfile.mkdtemp(prefix="plateforme-vllm-"))  # mode 0700
        key_file = self._key_dir / "api-key"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.api_key)
        return launch_command(self.spec, port, key_file)

    async def _run_once(self) -> None:
        if not self._vllm_checked:
            self.state = WorkerState.STARTING
            error = await vllm_import_error(self.spec)
            if error is not None:
                self.state = WorkerState.DOWN
                self.last_error = error
                log.error("%s", error)
                return
            self._vllm_checked = True
        watchdog = asyncio.create_task(self._watch_engine_processes(), name=f"vllm-watchdog:{self.spec.name}")
        try:
            await super()._run_once()
        finally:
            watchdog.cancel()

    async def _watch_engine_processes(self) -> None:
        """Keep the list of the server's engine processes while it runs; when it dies, kill those
        it left behind. They hold its log pipe open (and their GPU memory): until they are gone,
        the server's exit is not seen and it would not be restarted."""
        below: list[tuple[int, str]] = []
        while True:
            process = self._process
            if process is not None and process.returncode is None:
                below = await asyncio.to_thread(descendants, process.pid)
            elif below:
                await asyncio.to_thread(_kill_left_behind, below)
                below = []
            await asyncio.sleep(WATCH_EVERY_S)

    async def _terminate(self) -> None:
        """SIGTERM (vLLM then stops its engine processes), SIGKILL after a grace; then whatever
        it left behind. The exit is read from the return code, not from `wait()`: that waits for
        the log pipe too, which a left-behind engine process would hold open."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        below = await asyncio.to_thread(descendants, process.pid)
        process.terminate()
        if not await _exited(process, STOP_GRACE_S):
            process.kill()
            await _exited(process, STOP_GRACE_S)
        await asyncio.to_thread(_kill_left_behind, below)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_S)
        except TimeoutError:
            log.warning("the vLLM server of %s exited but its log pipe is still open", self.spec.name)

    async def stop(self) -> None:
        await super().stop()
        if self._key_dir is not None:
            shutil.rmtree(self._key_dir, ignore_errors=True)
            self._key_dir = None
