"""The documents waiting for ingestion, as the runners see them (every workspace).

Several runners (one per gateway replica) share the queue, as fine-tuning jobs are shared
(fine_tuning/job_store.py): a runner claims a `todo` document with a compare-and-set move to
`in_progress` that records its id and a lease, renewed while it works. A document whose runner is
gone (its lease expired, or it is this runner's own after a restart) is queued again, and fails
with that reason once it has been started MAX_ATTEMPTS times: nothing stays `in_progress` forever.
A result is only recorded while the runner still holds the document (not reprocessed or taken over
meanwhile).
"""

from datetime import timedelta

from sqlalchemy import or_, select, update

from plateforme.libraries.documents import ERROR, IN_PROGRESS, QUEUED
from plateforme.storage.database import Database
from plateforme.storage.library_tables import Library, LibraryDocument
from plateforme.tenancy.ids import utcnow

MAX_ATTEMPTS = 3


class IngestionQueue:
    def __init__(self, db: Database, runner_id: str, lease_s: float):
        self.db, self.runner_id, self.lease_s = db, runner_id, lease_s

    def _lease(self):
        return utcnow() + timedelta(seconds=self.lease_s)

    def claim(self, limit: int) -> list[str]:
        """Claim up to `limit` waiting documents, oldest first; the ids this runner won."""
        claimed: list[str] = []
        with self.db.session() as s:
            waiting = s.scalars(select(LibraryDocument.id).where(LibraryDocument.process_status == QUEUED)
                                .order_by(LibraryDocument.created_at, LibraryDocument.id).limit(limit * 4)).all()
            for doc_id in waiting:
                if len(claimed) >= limit:
                    break
                result = s.execute(update(LibraryDocument)
                                   .where(LibraryDocument.id == doc_id, LibraryDocument.process_status == QUEUED)
                                   .values(process_status=IN_PROGRESS, runner_id=self.runner_id,
                                           lease_until=self._lease(), process_error=None,
                                           attempts=LibraryDocument.attempts + 1))
                s.commit()
                if result.rowcount == 1:
                    claimed.append(doc_id)
        return claimed

    def load(self, doc_id: str) -> tuple[LibraryDocument, Library] | None:
        with self.db.session() as s:
            row = s.execute(select(LibraryDocument, Library).join(Library, Library.id == LibraryDocument.library_id)
                            .where(LibraryDocument.id == doc_id)).first()
        return None if row is None else (row[0], row[1])

    def _held(self, doc_ids):
        return (LibraryDocument.id.in_(doc_ids), LibraryDocument.runner_id == self.runner_id,
                LibraryDocument.process_status == IN_PROGRESS)

    def renew(self, doc_ids: list[str]) -> set[str]:
        """Extend the leases on `doc_ids`; the ids this runner still holds."""
        if not doc_ids:
            return set()
        with self.db.session() as s:
            s.execute(update(LibraryDocument).where(*self._held(doc_ids)).values(lease_until=self._lease()))
            s.commit()
            return set(s.scalars(select(LibraryDocument.id).where(*self._held(doc_ids))).all())

    def finish(self, doc_id: str, status: str, **fields) -> bool:
        """Record the outcome if this runner still holds the document; False otherwise (result dropped)."""
        with self.db.session() as s:
            result = s.execute(update(LibraryDocument).where(*self._held([doc_id])).values(
                process_status=status, runner_id=None, lease_until=None, **fields))
            s.commit()
        return result.rowcount == 1

    def release(self, doc_ids: list[str]) -> None:
        """Give documents back to the queue (this runner is stopping)."""
        if doc_ids:
            with self.db.session() as s:
                s.execute(update(LibraryDocument).where(*self._held(doc_ids))
                          .values(process_status=QUEUED, runner_id=None, lease_until=None))
                s.commit()

    def recover(self, running: set[str]) -> int:
        """Queue again (or fail, after MAX_ATTEMPTS starts) the documents in progress whose runner is
        gone: lease expired, or this runner's own that it does not run (it restarted). How many."""
        now = utcnow()
        orphaned = (LibraryDocument.process_status == IN_PROGRESS) & or_(
            LibraryDocument.lease_until.is_(None), LibraryDocument.lease_until < now,
            LibraryDocument.runner_id.is_(None), LibraryDocument.runner_id == self.runner_id)
        moved = 0
        with self.db.session() as s:
            rows = s.execute(select(LibraryDocument.id, LibraryDocument.attempts).where(orphaned)).all()
            for doc_id, attempts in rows:
                if doc_id in running:
                    continue
                if attempts >= MAX_ATTEMPTS:
                    values = {"process_status": ERROR, "process_error": (
                        f"ingestion was interrupted {attempts} times (the gateway processing it stopped or "
                        "crashed each time); reprocess the document to try again")}
                else:
                    values = {"process_status": QUEUED}
                result = s.execute(update(LibraryDocument).where(LibraryDocument.id == doc_id, orphaned)
                                   .values(runner_id=None, lease_until=None, **values))
                s.commit()
                moved += result.rowcount
        return moved

    def expired(self, limit: int = 100) -> list[LibraryDocument]:
        with self.db.session() as s:
            return list(s.scalars(select(LibraryDocument).where(LibraryDocument.expires_at <= utcnow())
                                  .limit(limit)).all())
