"""Jobs, events and checkpoints in the database; every status change is one transaction with its event.

Several runners (one per gateway replica) share the jobs: a runner claims a queued job with the
compare-and-set move that starts it, holding a lease it renews while the job is active; another
runner takes an active job over only once that lease has expired (`take_over`).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update

from plateforme.fine_tuning import statuses
from plateforme.fine_tuning.errors import JobNotFound
from plateforme.storage.database import Database
from plateforme.storage.fine_tuning_tables import FineTuningCheckpoint, FineTuningEvent, FineTuningJob
from plateforme.tenancy.ids import utcnow


@dataclass
class JobFilters:
    model: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    created_by: str | None = None
    status: str | None = None
    suffix: str | None = None


@dataclass
class JobDetail:
    job: FineTuningJob
    events: list[FineTuningEvent]
    checkpoints: list[FineTuningCheckpoint]


class JobStore:
    def __init__(self, db: Database):
        self.db = db

    def add(self, job: FineTuningJob) -> FineTuningJob:
        with self.db.session() as s:
            s.add(job)
            s.flush()  # the job row first: its event refers to it
            s.add(FineTuningEvent(job_id=job.id, name="status-updated", data={"status": job.status},
                                  created_at=job.created_at))
            s.commit()
            s.refresh(job)
            s.expunge(job)
        return job

    def get(self, workspace_id: str | None, job_id: str) -> FineTuningJob:
        """The job, if it exists in `workspace_id` (any workspace when None: the runner's view)."""
        with self.db.session() as s:
            job = s.get(FineTuningJob, job_id)
        if job is None or (workspace_id is not None and job.workspace_id != workspace_id):
            raise JobNotFound(job_id)
        return job

    def detail(self, workspace_id: str, job_id: str) -> JobDetail:
        job = self.get(workspace_id, job_id)
        with self.db.session() as s:
            events = s.scalars(select(FineTuningEvent).where(FineTuningEvent.job_id == job_id)
                               .order_by(FineTuningEvent.id)).all()
            checkpoints = s.scalars(select(FineTuningCheckpoint).where(FineTuningCheckpoint.job_id == job_id)
                                    .order_by(FineTuningCheckpoint.step_number.desc())).all()
        return JobDetail(job, list(events), list(checkpoints))

    def page(self, workspace_id: str, page: int, page_size: int,
             filters: JobFilters) -> tuple[list[FineTuningJob], int]:
        where = FineTuningJob.workspace_id == workspace_id
        for column, value in ((FineTuningJob.model, filters.model), (FineTuningJob.status, filters.status),
                              (FineTuningJob.created_by, filters.created_by),
                              (FineTuningJob.suffix, filters.suffix)):
            if value is not None:
                where &= column == value
        if filters.created_after is not None:
            where &= FineTuningJob.created_at > filters.created_after
        if filters.created_before is not None:
            where &= FineTuningJob.created_at < filters.created_before
        with self.db.session() as s:
            total = s.scalar(select(func.count()).select_from(FineTuningJob).where(where))
            rows = s.scalars(select(FineTuningJob).where(where)
                             .order_by(FineTuningJob.created_at.desc(), FineTuningJob.id)
                             .offset(page * page_size).limit(page_size)).all()
        return list(rows), total

    def move(self, job_id: str, new: str, expect: set[str] | None = None, data: dict | None = None,
             **fields) -> bool:
        """Set the status (and `fields`) if the job is in one of `expect` (default: any status that may
        become `new`), with its `status-updated` event. False when the job was elsewhere (compare-and-set,
        so two gateways never both take one job). IllegalTransition when `expect` names a status the
        table (statuses.ALLOWED) does not let become `new`."""
        allowed = statuses.sources(new, expect)
        now = utcnow()
        with self.db.session() as s:
            result = s.execute(update(FineTuningJob)
                               .where(FineTuningJob.id == job_id, FineTuningJob.status.in_(allowed))
                               .values(status=new, modified_at=now, **fields))
            if result.rowcount != 1:
                s.rollback()
                return False
            s.add(FineTuningEvent(job_id=job_id, name="status-updated", data={"status": new, **(data or {})},
                                  created_at=now))
            s.commit()
        return True

    def _orphaned(self, runner_id: str, now: datetime):
        """Active jobs no live runner holds: never claimed, lease expired, or `runner_id`'s own
        (a runner's id stays the same across restarts of its gateway)."""
        return (FineTuningJob.status.in_(statuses.ACTIVE)
                & or_(FineTuningJob.runner_id.is_(None), FineTuningJob.runner_id == runner_id,
                      FineTuningJob.lease_until.is_(None), FineTuningJob.lease_until < now))

    def orphans(self, runner_id: str) -> list[FineTuningJob]:
        """Active jobs `runner_id` may take over (its own included: leave out those it runs)."""
        with self.db.session() as s:
            return list(s.scalars(select(FineTuningJob).where(self._orphaned(runner_id, utcnow()))
                                  .order_by(FineTuningJob.created_at, FineTuningJob.id)).all())

    def take_over(self, job_id: str, runner_id: str, lease_s: float) -> FineTuningJob | None:
        """Claim an orphaned active job for `runner_id` (compare-and-set: one runner wins); None when
        another runner holds it, or it is no longer active."""
        now = utcnow()
        with self.db.session() as s:
            result = s.execute(update(FineTuningJob)
                               .where(FineTuningJob.id == job_id, self._orphaned(runner_id, now))
                               .values(runner_id=runner_id, lease_until=now + timedelta(seconds=lease_s)))
            s.commit()
            if result.rowcount != 1:
                return None
        return self.get(None, job_id)

    def renew(self, runner_id: str, job_ids: list[str], lease_s: float) -> set[str]:
        """Extend `runner_id`'s leases on `job_ids`; the ids it still holds (a job taken over by
        another runner after this one stalled past its lease is not among them)."""
        if not job_ids:
            return set()
        with self.db.session() as s:
            s.execute(update(FineTuningJob)
                      .where(FineTuningJob.id.in_(job_ids), FineTuningJob.runner_id == runner_id)
                      .values(lease_until=utcnow() + timedelta(seconds=lease_s)))
            s.commit()
            return set(s.scalars(select(FineTuningJob.id).where(FineTuningJob.id.in_(job_ids),
                                                                FineTuningJob.runner_id == runner_id)).all())

    @staticmethod
    def lease(runner_id: str, lease_s: float) -> dict:
        """The fields that claim a job for `runner_id`, to pass to `move`."""
        return {"runner_id": runner_id, "lease_until": utcnow() + timedelta(seconds=lease_s)}

    def set_fields(self, job_id: str, **fields) -> None:
        with self.db.session() as s:
            s.execute(update(FineTuningJob).where(FineTuningJob.id == job_id)
                      .values(modified_at=utcnow(), **fields))
            s.commit()

    def add_event(self, job_id: str, name: str, data: dict | None) -> None:
        with self.db.session() as s:
            s.add(FineTuningEvent(job_id=job_id, name=name, data=data, created_at=utcnow()))
            s.commit()

    def add_checkpoint(self, job_id: str, step: int, train_loss: float | None, valid_loss: float | None,
                       valid_accuracy: float | None, trained_tokens: int | None, metrics: dict | None = None) -> None:
        """`metrics`: a classifier job's metrics per target ({target: {valid_loss, accuracy, macro_f1}})."""
        now = utcnow()
        with self.db.session() as s:
            s.add(FineTuningCheckpoint(job_id=job_id, step_number=step, train_loss=train_loss,
                                       valid_loss=valid_loss, valid_mean_token_accuracy=valid_accuracy,
                                       metrics=metrics, created_at=now))
            values = {"modified_at": now}
            if trained_tokens is not None:
                values["trained_tokens"] = trained_tokens
            s.execute(update(FineTuningJob).where(FineTuningJob.id == job_id).values(**values))
            s.commit()

    def with_status(self, *wanted: str) -> list[FineTuningJob]:
        """Jobs in any of `wanted`, oldest first (all workspaces: for the runner)."""
        with self.db.session() as s:
            return list(s.scalars(select(FineTuningJob).where(FineTuningJob.status.in_(wanted))
                                  .order_by(FineTuningJob.created_at, FineTuningJob.id)).all())
