"""Run the trainer (`python -m plateforme.training`) as a child process and read its events.

The trainer prints one JSON event per line on stdout; its stderr is its log (the last line of a
failed run says why). It runs in its own process group, so cancelling signals every process of a
torchrun launch at once, and it dies with the gateway (PR_SET_PDEATHSIG).
"""

import asyncio
import collections
import ctypes
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

log = logging.getLogger("plateforme.fine_tuning")

EXIT_OK, EXIT_FAILED, EXIT_FAILED_VALIDATION, EXIT_CANCELLED = 0, 1, 3, 4


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def trainer_command(mode: str, job_file: Path, workdir: Path | None, processes: int) -> list[str]:
    cmd = [sys.executable]
    if processes > 1 and mode == "run":  # data-parallel over `processes` devices (DDP)
        cmd += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    cmd += ["-m", "plateforme.training", mode, "--job", str(job_file)]
    if workdir is not None:
        cmd += ["--workdir", str(workdir)]
    return cmd


class TrainerProcess:
    def __init__(self, command: list[str]):
        self.command = command
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=30)
        self._process: asyncio.subprocess.Process | None = None
        self._stderr_task: asyncio.Task | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *self.command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, preexec_fn=_die_with_parent,
            limit=1 << 20)
        self._stderr_task = asyncio.create_task(self._read_stderr())

    async def events(self) -> AsyncIterator[dict]:
        assert self._process is not None and self._process.stdout is not None
        async for raw in self._process.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                log.debug("trainer: %s", line)
                continue
            if isinstance(event, dict) and "event" in event:
                yield event

    async def wait(self) -> int:
        assert self._process is not None
        rc = await self._process.wait()
        if self._stderr_task is not None:
            await asyncio.gather(self._stderr_task, return_exceptions=True)
        return rc

    def reason(self) -> str:
        """The trainer's own last words, for a failed run (under torchrun, its summary comes after)."""
        lines = [line for line in self.stderr_tail if line.strip()]
        stated = [line for line in lines if line.startswith("training failed:")]
        if stated:
            return stated[-1]
        return lines[-1] if lines else "the trainer process exited without a message"

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self._process is not None and self._process.returncode is None:
            try:
                os.killpg(self._process.pid, sig)
            except ProcessLookupError:
                pass

    async def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if the trainer is still there after `grace_s`."""
        if self._process is None or self._process.returncode is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self._process.wait(), grace_s)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            await self._process.wait()

    async def _read_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        async for raw in self._process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.stderr_tail.append(line)
                log.debug("trainer: %s", line)
