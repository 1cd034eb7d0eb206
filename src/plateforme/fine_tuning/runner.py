"""The job runner: takes queued jobs (oldest first, a few at a time), watches for cancellation,
and takes over the active jobs whose runner is gone (its own, after a restart, at once).

Jobs run in trainer processes, never on the gateway's event loop. Several gateway replicas may
each run a runner on one database: a queued job is claimed by exactly one of them (the
compare-and-set move that starts it also records the runner and a lease of LEASE_S seconds,
renewed every POLL_S while the job is active). A job whose lease expired (its gateway stopped) is
taken over by another runner: a validating job is queued again, a requested cancellation is
completed, and a running job resumes from its last checkpoint where its working directory is
(the same data dir: the runner id is kept in it), and fails with that reason elsewhere.
"""

import asyncio
import logging

from plateforme.fine_tuning import statuses as st
from plateforme.fine_tuning.job_execution import JobExecution
from plateforme.fine_tuning.job_store import JobStore
from plateforme.fine_tuning.workdir import job_paths
from plateforme.storage.runner_identity import runner_id

log = logging.getLogger("plateforme.fine_tuning")
POLL_S = 2.0
LEASE_S = 30.0


class JobRunner:
    def __init__(self, store: JobStore, make_execution, max_jobs: int, data_dir, lease_s: float = LEASE_S):
        self.store = store
        self._make_execution = make_execution  # job -> JobExecution
        self.max_jobs = max_jobs
        self.data_dir = data_dir
        self.id = runner_id(data_dir)
        self.lease_s = lease_s
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
        while True:
            try:
                await self.schedule()
            except Exception:
                log.exception("fine-tuning runner: error while scheduling (retrying)")
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_S)
            except TimeoutError:
                pass
            self._wake.clear()

    async def schedule(self) -> None:
        """One round: renew the leases of the jobs run here, take over orphans, take queued jobs,
        stop the trainers of cancelled jobs."""
        await self._renew()
        await self._recover()
        await self._take_jobs()
        await self._watch_cancellations()

    async def _renew(self) -> None:
        held = await asyncio.to_thread(self.store.renew, self.id, list(self.active), self.lease_s)
        for job_id, execution in list(self.active.items()):
            if job_id not in held:  # this runner stalled past its lease and another one took the job
                log.warning("fine-tuning job %s was taken over by another runner; stopping its trainer here", job_id)
                execution.closing = True
                if execution.process is not None:
                    await execution.process.stop()

    async def _recover(self) -> None:
        for job in await asyncio.to_thread(self.store.orphans, self.id):
            if job.id in self.active:
                continue
            has_workdir = await asyncio.to_thread(job_paths(self.data_dir, job.id).train.exists)
            if job.status == st.RUNNING and has_workdir and len(self.active) >= self.max_jobs:
                continue  # left for a runner with room (or this one, later)
            job = await asyncio.to_thread(self.store.take_over, job.id, self.id, self.lease_s)
            if job is None:
                continue  # another runner was quicker
            if job.status == st.CANCELLATION_REQUESTED:
                await asyncio.to_thread(self.store.move, job.id, st.CANCELLED, None,
                                        {"reason": "cancelled while its runner was down"})
            elif job.status == st.VALIDATING:
                await asyncio.to_thread(self.store.move, job.id, st.QUEUED, None,
                                        {"reason": "its runner stopped during validation"})
            elif job.status == st.RUNNING and not has_workdir:
                await asyncio.to_thread(self.store.move, job.id, st.FAILED, None, {
                    "error": "the gateway that ran this job stopped and its working directory is gone "
                             "(or on another node's data dir); create the job again"})
            elif job.status == st.RUNNING:
                self._launch(job)  # resumes from its last checkpoint

    async def _take_jobs(self) -> None:
        if len(self.active) >= self.max_jobs:
            return
        for job in await asyncio.to_thread(self.store.with_status, st.QUEUED):
            if len(self.active) >= self.max_jobs:
                return
            # Validated jobs (started by hand) train at once; others are validated first.
            new = st.RUNNING if job.job_metadata is not None else st.VALIDATING
            if not await asyncio.to_thread(self.store.move, job.id, new, {st.QUEUED},
                                           **self.store.lease(self.id, self.lease_s)):
                continue  # another runner took it
            self._launch(await asyncio.to_thread(self.store.get, None, job.id))

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
