"""Fine-tuning jobs on one database shared by several gateway replicas (SQLite and PostgreSQL):
each queued job is claimed by exactly one runner, an active job whose runner still holds its
lease is left alone, and one whose runner is gone is taken over.

The runners are the real JobRunner on real databases (one Database per replica); only the
trainer is replaced, by an execution that records that it ran (training twice live is too slow)."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from plateforme.fine_tuning import statuses as st
from plateforme.fine_tuning.job_store import JobStore
from plateforme.fine_tuning.runner import JobRunner
from plateforme.fine_tuning.workdir import job_paths
from plateforme.storage.database import open_database
from plateforme.storage.fine_tuning_tables import FineTuningJob
from plateforme.storage.tables import Workspace

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class RecordedExecution:
    """Stands in for JobExecution: records the launch and holds the job until cancelled."""

    launched: list[tuple[str, str]] = []

    def __init__(self, runner_name: str, job):
        self.job, self.process, self.closing = job, None, False
        RecordedExecution.launched.append((runner_name, job.id))

    async def run(self) -> None:
        await asyncio.Event().wait()


@pytest.fixture
def stores(database_url):
    dbs = [open_database(database_url), open_database(database_url)]
    with dbs[0].session() as s:
        s.add(Workspace(id="ws_a", name="ws_a", created_at=NOW, budget_period="month"))
        s.commit()
    RecordedExecution.launched = []
    yield [JobStore(db) for db in dbs]
    for db in dbs:
        db.dispose()


def _job(job_id: str, minutes: int = 0, **fields) -> FineTuningJob:
    at = NOW + timedelta(minutes=minutes)
    values = dict(id=job_id, workspace_id="ws_a", created_by="user_1", model="base", status=st.QUEUED,
                  auto_start=True, suffix=None, hyperparameters={"training_steps": 2}, training_files=[],
                  validation_files=[], invalid_sample_skip_percentage=0.0, created_at=at, modified_at=at)
    values.update(fields)
    return FineTuningJob(**values)


def _runner(store: JobStore, data_dir, name: str, lease_s: float = 30.0, max_jobs: int = 16) -> JobRunner:
    return JobRunner(store, lambda job: RecordedExecution(name, job), max_jobs, data_dir, lease_s=lease_s)


async def _stop(*runners: JobRunner) -> None:
    for runner in runners:
        for task in list(runner._tasks):
            task.cancel()
        await asyncio.gather(*runner._tasks, return_exceptions=True)


def test_each_queued_job_is_claimed_by_exactly_one_of_two_racing_runners(stores, tmp_path):
    for i in range(12):
        stores[0].add(_job(f"j{i:02}", minutes=i, job_metadata={"train_tokens": 1} if i % 3 == 0 else None))

    async def race():
        a, b = _runner(stores[0], tmp_path / "a", "a"), _runner(stores[1], tmp_path / "b", "b")
        assert a.id != b.id
        for _ in range(3):  # several rounds at once, as two replicas' loops would
            await asyncio.gather(a.schedule(), b.schedule())
        await _stop(a, b)
        return a, b

    a, b = asyncio.run(race())
    launched = RecordedExecution.launched
    assert sorted(job_id for _, job_id in launched) == [f"j{i:02}" for i in range(12)]  # each once
    for name, job_id in launched:
        job = stores[0].get(None, job_id)
        assert job.runner_id == (a.id if name == "a" else b.id)
        assert job.status == (st.RUNNING if int(job_id[1:]) % 3 == 0 else st.VALIDATING)


def test_a_held_job_is_left_alone_and_an_orphan_is_taken_over(stores, tmp_path):
    stores[0].add(_job("run", job_metadata={"train_tokens": 1}))
    stores[0].add(_job("val", minutes=1))

    async def scenario():
        a = _runner(stores[0], tmp_path / "a", "a", lease_s=0.6)
        await a.schedule()  # a claims both
        b = _runner(stores[1], tmp_path / "b", "b", lease_s=0.6)
        await b.schedule()  # their leases hold: b takes nothing
        assert RecordedExecution.launched == [("a", "run"), ("a", "val")]
        await asyncio.sleep(0.3)
        await a.schedule()  # a renews its leases
        await asyncio.sleep(0.4)
        await b.schedule()  # 0.7 s since a claimed them, 0.4 s since it renewed: still a's
        assert len(RecordedExecution.launched) == 2
        await _stop(a)  # a's gateway is gone: nothing renews
        await asyncio.sleep(0.7)
        await b.schedule()
        await _stop(b)
        return a, b

    a, b = asyncio.run(scenario())
    # The validating job is queued again and claimed by b in the same round; the running one's
    # working directory is in a's data dir, not b's: it fails with that reason.
    assert RecordedExecution.launched[2:] == [("b", "val")]
    assert stores[1].get(None, "val").status == st.VALIDATING and stores[1].get(None, "val").runner_id == b.id
    failed = stores[1].detail("ws_a", "run")
    assert failed.job.status == st.FAILED and "working directory is gone" in failed.events[-1].data["error"]


def test_a_restarted_gateway_takes_its_own_running_job_back_at_once(stores, tmp_path):
    stores[0].add(_job("run", job_metadata={"train_tokens": 1}))

    async def scenario():
        first = _runner(stores[0], tmp_path / "a", "a")
        await first.schedule()
        await _stop(first)  # the gateway stops; its lease (30 s) still holds
        job_paths(tmp_path / "a", "run").train.mkdir(parents=True)  # its checkpoints are there
        other = _runner(stores[1], tmp_path / "b", "b")
        await other.schedule()  # another replica must wait for the lease
        again = _runner(stores[1], tmp_path / "a", "a")  # same data dir: same runner
        assert again.id == first.id
        await again.schedule()
        await _stop(again)

    asyncio.run(scenario())
    assert RecordedExecution.launched == [("a", "run"), ("a", "run")]
    assert stores[0].get(None, "run").status == st.RUNNING
