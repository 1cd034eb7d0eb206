"""Who may do what with a library: the roles, and the access predicates every library query carries.

A library belongs to one workspace. Its owner is either the workspace (owner_type "Workspace":
every key of the workspace is Owner) or one user of it (owner_type "User": a private library, of
which only that user's keys are Owner; the workspace's admins are not, so private stays private).
Others get a role through `library_shares`: shared with their workspace (Workspace, workspace id),
with their user (User, user id), or with the whole installation (Org: one installation is one
organisation, so an Org share reaches every workspace), as Viewer or Editor.

Viewer reads the library, its documents, their text, status and signed links, and searches it;
Editor also uploads, updates, deletes and reprocesses documents and updates the library; Owner
also deletes the library and manages its sharing. No role at all is answered as if the library did
not exist (404: its existence is never revealed); a role too low gets 403.

The checks are SQL predicates, part of the query that reads the library (never a filter applied
to rows already loaded), so a library the caller may not see is never read at all.
"""

from sqlalchemy import ColumnElement, Select, and_, false, literal, or_, select, union_all
from sqlalchemy.orm import Session

from plateforme.libraries.errors import LibraryForbidden, LibraryNotFound
from plateforme.storage.library_tables import Library, LibraryShare
from plateforme.tenancy.principal import Principal

ROLES = ("Viewer", "Editor", "Owner")  # increasing
VIEWER, EDITOR, OWNER = ROLES
SHARE_ROLES = (VIEWER, EDITOR)  # what a share may grant (Owner is never shared)
ENTITY_TYPES = ("User", "Workspace", "Org")
OWNER_TYPES = ("User", "Workspace")


def rank(role: str | None) -> int:
    """0 for no access, then 1, 2, 3 for Viewer, Editor, Owner (unknown strings count as none)."""
    return ROLES.index(role) + 1 if role in ROLES else 0


def owns(principal: Principal) -> ColumnElement[bool]:
    """Predicate on `libraries`: the principal is its Owner."""
    own = Library.owner_type == "Workspace"
    if principal.user_id is not None:  # a key without a user (the static key) owns no private library
        own = or_(own, and_(Library.owner_type == "User", Library.owner_id == principal.user_id))
    return and_(Library.workspace_id == principal.workspace_id, own)


def shared_with(principal: Principal) -> ColumnElement[bool]:
    """Predicate on `library_shares`: the share reaches the principal."""
    reached = [LibraryShare.share_with_type == "Org",
               and_(LibraryShare.share_with_type == "Workspace",
                    LibraryShare.share_with_uuid == principal.workspace_id)]
    if principal.user_id is not None:
        reached.append(and_(LibraryShare.share_with_type == "User", LibraryShare.share_with_uuid == principal.user_id))
    return and_(or_(*reached), LibraryShare.role.in_(SHARE_ROLES))


def _shared_ids(principal: Principal, roles: tuple[str, ...] = SHARE_ROLES) -> Select:
    return select(LibraryShare.library_id).where(shared_with(principal), LibraryShare.role.in_(roles))


def readable(principal: Principal) -> ColumnElement[bool]:
    """Predicate on `libraries`: the principal may read it (any role)."""
    return or_(owns(principal), Library.id.in_(_shared_ids(principal)))


def allowed(principal: Principal, at_least: str) -> ColumnElement[bool]:
    """Predicate on `libraries`: the principal's role is `at_least` or higher."""
    if at_least == OWNER:
        return owns(principal)
    roles = tuple(r for r in SHARE_ROLES if rank(r) >= rank(at_least))
    shared = Library.id.in_(_shared_ids(principal, roles)) if roles else false()
    return or_(owns(principal), shared)


def readable_library_ids(principal: Principal) -> Select:
    """SELECT of the ids of every library the principal may read: usable as a subquery
    (`column.in_(readable_library_ids(p))`)."""
    return select(Library.id).where(readable(principal))


def role_of(session: Session, principal: Principal, library_id: str) -> str | None:
    """The principal's highest role on the library; None when it has none (or no such library)."""
    owner = select(literal(OWNER).label("role")).where(Library.id == library_id, owns(principal))
    shares = select(LibraryShare.role.label("role")).where(LibraryShare.library_id == library_id,
                                                           shared_with(principal))
    roles = session.scalars(union_all(owner, shares)).all()
    best = max(roles, key=rank, default=None)
    return best if rank(best) else None


def check(library_id: str, role: str | None, at_least: str) -> str:
    """`role` when it is `at_least` or higher; LibraryNotFound for no role, LibraryForbidden for too low."""
    if not rank(role):
        raise LibraryNotFound(library_id)
    if rank(role) < rank(at_least):
        raise LibraryForbidden(library_id, role, at_least)
    return role


def require(session: Session, principal: Principal, library_id: str, at_least: str) -> str:
    """The principal's role on the library, checked to be `at_least` (see `check`)."""
    return check(library_id, role_of(session, principal, library_id), at_least)
