"""Sharing of a library (Owner only): list who has access, grant or change a role, take it away.

The owner itself (the workspace, or the user of a private library) is listed with role Owner and
cannot change or delete its own role. An Org share reaches every workspace of this installation
(one installation is one organisation: its id is `org_id`, the same on every replica).
"""

import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from plateforme.libraries import access
from plateforme.libraries.errors import LibraryError
from plateforme.storage.database import Database
from plateforme.storage.library_tables import Library, LibraryShare
from plateforme.storage.tables import User, Workspace
from plateforme.tenancy.ids import utcnow
from plateforme.tenancy.principal import Principal


def installation_org_id(signing_key: bytes) -> str:
    """This installation's organisation id: derived from the key every replica shares."""
    return str(uuid.UUID(bytes=hashlib.sha256(b"plateforme-org:" + signing_key).digest()[:16], version=4))


@dataclass(frozen=True)
class Share:
    library_id: str
    share_with_type: str
    share_with_uuid: str
    role: str


class SharingService:
    def __init__(self, db: Database, org_id: str):
        self.db, self.org_id = db, org_id

    def _owned(self, s, principal: Principal, library_id: str) -> Library:
        access.require(s, principal, library_id, access.OWNER)
        return s.scalar(select(Library).where(Library.id == library_id, access.owns(principal)))

    @staticmethod
    def _owner_share(library: Library) -> Share:
        return Share(library.id, library.owner_type, library.owner_id or library.workspace_id, access.OWNER)

    def list(self, principal: Principal, library_id: str) -> list[Share]:
        with self.db.session() as s:
            library = self._owned(s, principal, library_id)
            rows = s.scalars(select(LibraryShare).where(LibraryShare.library_id == library.id)
                             .order_by(LibraryShare.created_at, LibraryShare.share_with_type)).all()
        return [self._owner_share(library)] + [
            Share(r.library_id, r.share_with_type, r.share_with_uuid, r.role) for r in rows]

    def _target(self, s, library: Library, kind: str, target: str) -> str:
        """The stored uuid for (kind, target), checked to exist and not to be the owner itself."""
        if kind not in access.ENTITY_TYPES:
            raise LibraryError(f"share_with_type must be one of {', '.join(access.ENTITY_TYPES)}.", 422,
                               "share_with_type")
        if kind == "Org":
            return self.org_id  # the only organisation there is
        owner = self._owner_share(library)
        if (kind, target) == (owner.share_with_type, owner.share_with_uuid):
            raise LibraryError(f"{kind} {target} owns this library: an owner's own role cannot be changed "
                               "or deleted.", 400, "share_with_uuid")
        table = Workspace if kind == "Workspace" else User
        if s.get(table, target) is None:
            raise LibraryError(f"No {kind.lower()} with id {target!r} in this installation.", 404,
                               "share_with_uuid")
        return target

    def put(self, principal: Principal, library_id: str, kind: str, target: str, level: str) -> Share:
        if level not in access.SHARE_ROLES:
            raise LibraryError(f"level must be one of {', '.join(access.SHARE_ROLES)} (got {level!r}).", 422,
                               "level")
        with self.db.session() as s:
            library = self._owned(s, principal, library_id)
            target = self._target(s, library, kind, target)
            row = s.get(LibraryShare, (library.id, kind, target))
            if row is None:
                s.add(LibraryShare(library_id=library.id, share_with_type=kind, share_with_uuid=target,
                                   role=level, created_at=utcnow()))
            else:
                row.role = level
            s.commit()
        return Share(library_id, kind, target, level)

    def delete(self, principal: Principal, library_id: str, kind: str, target: str) -> Share:
        with self.db.session() as s:
            library = self._owned(s, principal, library_id)
            if kind == "Org":
                target = self.org_id
            owner = self._owner_share(library)
            if (kind, target) == (owner.share_with_type, owner.share_with_uuid):
                raise LibraryError(f"{kind} {target} owns this library: an owner's own access cannot be "
                                   "deleted.", 400, "share_with_uuid")
            row = s.get(LibraryShare, (library.id, kind, target))
            if row is None:
                raise LibraryError(f"Library {library_id} is not shared with {kind} {target!r}.", 404,
                                   "share_with_uuid")
            share = Share(row.library_id, row.share_with_type, row.share_with_uuid, row.role)
            s.delete(row)
            s.commit()
        return share
