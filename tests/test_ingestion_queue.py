"""The ingestion queue shared by several runners (libraries/ingestion_queue.py), on SQLite and
PostgreSQL: one claim per document, leases, results kept only while held, orphans queued again,
and failed once they have been started MAX_ATTEMPTS times."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import update

from plateforme.libraries.ingestion_queue import MAX_ATTEMPTS, IngestionQueue
from plateforme.storage.database import open_database
from plateforme.storage.library_tables import Library, LibraryDocument
from plateforme.tenancy.accounts import Accounts
from plateforme.tenancy.ids import utcnow


def _status(db, doc_id):
    with db.session() as s:
        doc = s.get(LibraryDocument, doc_id)
        return doc.process_status, doc.runner_id, doc.attempts, doc.process_error


def test_runners_share_the_queue(database_url):
    db = open_database(database_url)
    workspace = Accounts(db).create_workspace("w")
    now = utcnow()
    with db.session() as s:
        s.add(Library(id="lib", workspace_id=workspace.id, owner_type="Workspace", owner_id=workspace.id,
                      name="l", embedding_model="e", created_at=now, updated_at=now))
        s.flush()
        for i in range(8):
            s.add(LibraryDocument(id=f"d{i}", library_id="lib", name=f"{i}.txt", size=1, hash=str(i), blob_key="k",
                                  uploaded_by_type="Workspace", process_status="todo", tokens_processing_total=0,
                                  attempts=0, created_at=now + timedelta(seconds=i)))
        s.commit()
    one, two = IngestionQueue(db, "runner-1", 30), IngestionQueue(db, "runner-2", 30)

    with ThreadPoolExecutor(2) as pool:  # both at once: every document is claimed by exactly one
        claimed = list(pool.map(lambda q: q.claim(3), [one, two]))
    assert sorted(claimed[0] + claimed[1]) == [f"d{i}" for i in range(6)]
    mine, theirs = claimed
    assert len(mine) == 3 and len(theirs) == 3
    assert one.renew(mine + theirs) == set(mine)  # a runner holds only its own

    # A result is recorded only while the runner holds the document.
    assert one.finish(mine[0], "done", tokens_processing_total=7)
    assert not two.finish(mine[1], "done")
    with db.session() as s:  # reprocessed meanwhile: the runner's late result is dropped
        s.execute(update(LibraryDocument).where(LibraryDocument.id == mine[1])
                  .values(process_status="todo", runner_id=None, lease_until=None))
        s.commit()
    assert not one.finish(mine[1], "done") and _status(db, mine[1])[0] == "todo"

    # Runner 1 restarts: its own documents go back to the queue at once; runner 2's live leases hold.
    assert one.recover(running=set()) == 1  # mine[2] (mine[1] is already todo)
    assert _status(db, mine[2])[:2] == ("todo", None)
    assert all(_status(db, d)[0] == "in_progress" for d in theirs)
    # Runner 2 stops without a word: once its leases expire, runner 1 queues its documents again.
    with db.session() as s:
        s.execute(update(LibraryDocument).where(LibraryDocument.id.in_(theirs))
                  .values(lease_until=utcnow() - timedelta(seconds=1)))
        s.commit()
    assert one.recover(running=set()) == 3
    assert two.renew(theirs) == set()  # its leases are gone

    # A document interrupted MAX_ATTEMPTS times fails with that reason instead of running forever.
    victim = theirs[0]
    for attempt in range(2, MAX_ATTEMPTS + 1):
        assert victim in one.claim(10)
        assert _status(db, victim)[2] == attempt
        with db.session() as s:  # the runner's gateway dies again
            s.execute(update(LibraryDocument).where(LibraryDocument.process_status == "in_progress")
                      .values(lease_until=utcnow() - timedelta(seconds=1), runner_id="gone"))
            s.commit()
        two.recover(running=set())
    status, runner, attempts, error = _status(db, victim)
    assert (status, runner, attempts) == ("error", None, MAX_ATTEMPTS) and "interrupted 3 times" in error

    # Giving documents back on a clean stop; a stopping runner releases only what it holds.
    claimed = two.claim(10)
    one.release(claimed)
    assert all(_status(db, d)[0] == "in_progress" for d in claimed)
    two.release(claimed)
    assert all(_status(db, d)[:2] == ("todo", None) for d in claimed)
    db.dispose()
