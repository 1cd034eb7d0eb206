"""Accounts on SQLite and PostgreSQL: keys hashed, shown once, scoped, revocable, expiring; audit."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from plateforme.storage.database import open_database
from plateforme.storage.tables import ApiKey
from plateforme.tenancy.accounts import Accounts
from plateforme.tenancy.audit import AuditLog
from plateforme.tenancy.errors import AccountError, Conflict, NotFound
from plateforme.tenancy.ids import as_utc, utcnow


@pytest.fixture
def accounts(database_url):
    db = open_database(database_url)
    yield Accounts(db)
    db.dispose()


def test_bootstrap_then_keys_authenticate_to_their_workspace(accounts):
    admin, admin_key = accounts.bootstrap("root@example.com")
    principal = accounts.authenticate(admin_key)
    assert principal.is_admin and principal.user_id == admin.id
    with pytest.raises(Conflict):
        accounts.bootstrap("again@example.com")

    team = accounts.create_workspace("team-b")
    member = accounts.create_user(team.id, "bob@example.com")
    record, plaintext = accounts.create_key(member.id, name="ci")
    assert plaintext.startswith(record.prefix + "-")
    principal = accounts.authenticate(plaintext)
    assert principal.workspace_id == team.id and principal.role == "member"
    with accounts.db.session() as s:  # only the hash is stored
        stored = s.scalar(select(ApiKey).where(ApiKey.id == record.id))
        assert plaintext not in (stored.secret_hash, stored.prefix) and len(stored.secret_hash) == 64


def test_wrong_revoked_and_expired_keys_are_refused(accounts):
    user, key = accounts.bootstrap("root@example.com")
    assert accounts.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert accounts.authenticate("not-a-key") is None and accounts.authenticate("") is None
    short, short_key = accounts.create_key(user.id, expires_at=utcnow() + timedelta(seconds=1))
    assert accounts.authenticate(short_key) is not None
    with accounts.db.session() as s:
        s.get(ApiKey, short.id).expires_at = utcnow() - timedelta(seconds=1)
        s.commit()
    assert accounts.authenticate(short_key) is None
    other_ws = accounts.create_workspace("other")
    with pytest.raises(NotFound):  # a workspace cannot revoke another's key
        accounts.revoke_key(accounts.list_keys(user.workspace_id)[0].id, workspace_id=other_ws.id)
    accounts.revoke_key(accounts.list_keys(user.workspace_id)[0].id)
    assert accounts.authenticate(key) is None


def test_audit_log_is_append_only_and_filtered_by_workspace(accounts):
    _, key = accounts.bootstrap("root@example.com")
    principal = accounts.authenticate(key)
    audit = AuditLog(accounts.db)
    audit.record(principal, "key.create", "api_key", "key_1", "10.0.0.1")
    audit.record(None, "file.read", "file", "f_2", workspace_id="ws_other")
    mine = audit.events(principal.workspace_id)
    assert [(e.action, e.address, e.actor_user_id) for e in mine] == [("key.create", "10.0.0.1", principal.user_id)]
    assert len(audit.events()) == 2
    with accounts.db.engine.connect() as conn:  # the database itself refuses edits of the log
        for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"):
            with pytest.raises(DBAPIError, match="append-only"):
                conn.execute(text(statement))
            conn.rollback()
    assert len(audit.events()) == 2


def test_key_expiry_with_an_offset_is_the_same_instant_in_utc(accounts):
    """A key's expires_at may carry any offset; naive times are UTC. SQLite keeps no offset, so a time
    stored unconverted would move by the offset (a -05:00 key refused at once, a +05:00 one 5 h late)."""
    user, _ = accounts.bootstrap("root@example.com")
    in_an_hour = utcnow() + timedelta(hours=1)
    cases = {"-05:00": in_an_hour.astimezone(timezone(timedelta(hours=-5))),
             "+05:00": in_an_hour.astimezone(timezone(timedelta(hours=5))),
             "naive": in_an_hour.replace(tzinfo=None)}
    for label, moment in cases.items():
        record, plaintext = accounts.create_key(user.id, name=label, expires_at=moment)
        assert accounts.authenticate(plaintext) is not None, label
        with accounts.db.session() as s:
            stored = s.get(ApiKey, record.id).expires_at
        assert abs((as_utc(stored) - in_an_hour).total_seconds()) < 1, (label, stored)
    just_gone = (utcnow() - timedelta(seconds=1)).astimezone(timezone(timedelta(hours=5)))
    with pytest.raises(AccountError, match="past"):
        accounts.create_key(user.id, expires_at=just_gone)
    with pytest.raises(AccountError, match="out of range"):  # year 10000 once in UTC: refused, not a crash
        accounts.create_key(user.id, expires_at=datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))))
