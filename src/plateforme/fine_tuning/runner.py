"""The job runner: takes queued jobs (oldest first, a few at a time), watches for cancellation,
and after a restart resumes what was running.

Jobs run in trainer processes, never on the gateway's event loop. A job RUNNING when the platform
stopped continues from its last checkpoint (the trainer resumes from its work directory); one
that was validating is validated again; a requested cancellation is completed.
One runner per database: on extra gateway nodes set PLATEFORME_FINE_TUNING_RUNNER=false.
"""

import asyncio
import logging

from plateforme.fine_tuning import statuses as st
from plateforme.fine_tuning.job_execution import JobExecution
from plateforme.fine_tuning.job_store import JobStore
from plateforme.fine_tuning.workdir import job_paths

log = logging.getLogger("plateforme.fine_tuning")
POLL_S = 2.0


class JobRunner:
    def __init__(self, store: JobStore, make_execution, max_jobs: int, data_dir):
        self.store = store
        self._make_execution = make_execution  # job -> JobExecution
        self.max_jobs = max_jobs
        self.data_dir = data_dir
        self.active: dict[str, JobExecution] = {}
        self._tasks: set[asyncio.Task] = set()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="fine-tuning-runner")

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        """Stop taking jobs and stop the trainers; running jobs stay RUNNING and resume at next start."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        for execution in self.active.values():
            execution.closing = True
        await asyncio.gather(*(e.process.stop() for e in self.active.values() if e.process),
                             return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def cancel(self, job_id: str) -> None:
        """Stop the trainer of `job_id` if it runs here (its status was already moved)."""
        execution = self.active.get(job_id)
        if execution is not None and execution.process is not None:
            execution.process.signal()

    async def _loop(self) -> None:
        await asyncio.to_thread(self._recover)
        while True:
            try:
                await self._take_jobs()
                await self._watch_cancellations()
            except Exception:
                log.exception("fine-tuning runner: error while scheduling (retrying)")
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_S)
            except TimeoutError:
                pass
            self._wake.clear()

    def _recover(self) -> None:
        for job in self.store.with_status(*st.ACTIVE):
            if job.status == st.CANCELLATION_REQUESTED:
                self.store.move(job.id, st.CANCELLED, data={"reason": "cancelled while the platform was down"})
            elif job.status == st.VALIDATING:
                self.store.move(job.id, st.QUEUED, data={"reason": "the platform restarted during validation"})
            elif not job_paths(self.data_dir, job.id).train.exists():
                self.store.move(job.id, st.FAILED, data={
                    "error": "the platform restarted and this job's working directory is gone; "
                             "create the job again"})
        # RUNNING jobs with a working directory are picked up by _take_jobs and resume there.

    async def _take_jobs(self) -> None:
        if len(self.active) >= self.max_jobs:
            return
        running = [j for j in await asyncio.to_thread(self.store.with_status, st.RUNNING)
                   if j.id not in self.active]
        queued = await asyncio.to_thread(self.store.with_status, st.QUEUED)
        for job in running + queued:
            if len(self.active) >= self.max_jobs:
                return
            if job.status == st.QUEUED:
                # Validated jobs (started by hand) train at once; others are validated first.
                new = st.RUNNING if job.job_metadata is not None else st.VALIDATING
                if not await asyncio.to_thread(self.store.move, job.id, new, {st.QUEUED}):
                    continue  # another node took it
                job = await asyncio.to_thread(self.store.get, None, job.id)
            self._launch(job)

    def _launch(self, job) -> None:
        execution = self._make_execution(job)
        self.active[job.id] = execution

        async def run() -> None:
            try:
                await execution.run()
            except Exception:
                log.exception("fine-tuning job %s crashed in the runner", job.id)
                await asyncio.to_thread(self.store.move, job.id, st.FAILED, None,
                                        {"error": "internal error in the job runner; see the server log"})
            finally:
                self.active.pop(job.id, None)
                self.wake()

        task = asyncio.create_task(run(), name=f"fine-tuning-job:{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch_cancellations(self) -> None:
        """Cancellation requested through another node (or lost signal): stop the trainer here."""
        if not self.active:
            return
        for job_id, execution in list(self.active.items()):
            job = await asyncio.to_thread(self.store.get, None, job_id)
            if job.status in (st.CANCELLATION_REQUESTED, st.CANCELLED) and execution.process is not None:
                execution.process.signal()
