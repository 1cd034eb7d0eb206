"""Library access rules (libraries/access.py) on a real database, SQLite and PostgreSQL: who is
Owner, Editor, Viewer or nothing, through ownership and every kind of share."""

import pytest
from sqlalchemy import select

from plateforme.libraries import access
from plateforme.libraries.errors import LibraryForbidden, LibraryNotFound
from plateforme.storage.database import open_database
from plateforme.storage.library_tables import Library, LibraryShare
from plateforme.tenancy.accounts import Accounts
from plateforme.tenancy.ids import utcnow
from plateforme.tenancy.principal import Principal


def _principal(user) -> Principal:
    return Principal(workspace_id=user.workspace_id, key_id=f"key-{user.id}", user_id=user.id, role=user.role)


def test_roles_through_ownership_and_shares(database_url):
    db = open_database(database_url)
    accounts = Accounts(db)
    ws_a, ws_b, ws_c = (accounts.create_workspace(n) for n in ("a", "b", "c"))
    admin_a = accounts.create_user(ws_a.id, "admin@a", role="admin")
    ana, bob = accounts.create_user(ws_a.id, "ana@a"), accounts.create_user(ws_a.id, "bob@a")
    bea = accounts.create_user(ws_b.id, "bea@b")
    cid = accounts.create_user(ws_c.id, "cid@c")
    static = Principal(workspace_id=ws_a.id, key_id="static", user_id=None, role="admin")
    now = utcnow()

    def library(lid, owner_type, owner_id, workspace=ws_a):
        return Library(id=lid, workspace_id=workspace.id, owner_type=owner_type, owner_id=owner_id, name=lid,
                       embedding_model="e", created_at=now, updated_at=now)

    def share(lid, kind, uuid, role):
        return LibraryShare(library_id=lid, share_with_type=kind, share_with_uuid=uuid, role=role, created_at=now)

    with db.session() as s:
        s.add_all([library("team", "Workspace", ws_a.id), library("private", "User", ana.id),
                   library("shared", "User", ana.id), library("org", "Workspace", ws_b.id, ws_b)])
        s.flush()
        s.add_all([share("shared", "User", bob.id, "Editor"), share("shared", "Workspace", ws_b.id, "Viewer"),
                   share("shared", "User", bea.id, "Editor"),  # the highest of a key's roles counts
                   share("org", "Org", "00000000-0000-0000-0000-000000000001", "Viewer")])
        s.commit()

    expected = {  # principal -> {library: role}
        "ana": (_principal(ana), {"team": "Owner", "private": "Owner", "shared": "Owner", "org": "Viewer"}),
        "bob": (_principal(bob), {"team": "Owner", "private": None, "shared": "Editor", "org": "Viewer"}),
        "admin_a": (_principal(admin_a), {"team": "Owner", "private": None, "shared": None, "org": "Viewer"}),
        "static": (static, {"team": "Owner", "private": None, "shared": None, "org": "Viewer"}),
        "bea": (_principal(bea), {"team": None, "private": None, "shared": "Editor", "org": "Owner"}),
        "cid": (_principal(cid), {"team": None, "private": None, "shared": None, "org": "Viewer"}),
    }
    with db.session() as s:
        for name, (principal, roles) in expected.items():
            got = {lid: access.role_of(s, principal, lid) for lid in roles}
            assert got == roles, name
            readable = set(s.scalars(access.readable_library_ids(principal)))
            assert readable == {lid for lid, role in roles.items() if role}, name
            for needed in access.ROLES:  # the SQL predicate agrees with role_of
                ok = set(s.scalars(select(Library.id).where(access.allowed(principal, needed))))
                assert ok == {lid for lid, role in roles.items() if access.rank(role) >= access.rank(needed)}
        assert access.role_of(s, _principal(ana), "no-such-library") is None
        assert access.require(s, _principal(bob), "shared", "Editor") == "Editor"
        with pytest.raises(LibraryForbidden):
            access.require(s, _principal(bob), "shared", "Owner")
        with pytest.raises(LibraryNotFound):
            access.require(s, _principal(cid), "shared", "Viewer")
    db.dispose()
