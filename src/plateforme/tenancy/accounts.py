"""Workspaces, users and API keys: creation, listing, revocation, and key authentication."""

import re
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from plateforme.storage.database import Database
from plateforme.storage.tables import ApiKey, User, Workspace
from plateforme.tenancy import key_material
from plateforme.tenancy.errors import AccountError, Conflict, NotFound
from plateforme.tenancy.ids import as_utc, new_id, utcnow
from plateforme.tenancy.principal import Principal

ROLES = ("admin", "member")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")


class Accounts:
    def __init__(self, db: Database):
        self.db = db

    def _insert(self, row, conflict: str):
        """Store a new row; Conflict(`conflict`) when it breaks a uniqueness rule."""
        with self.db.session() as s:
            s.add(row)
            try:
                s.commit()
            except IntegrityError as exc:
                raise Conflict(conflict) from exc
        return row

    # Workspaces
    def create_workspace(self, name: str, **limits) -> Workspace:
        if not _NAME.match(name):
            raise AccountError(f"invalid workspace name {name!r}: letters, digits, space, '.', '_', '-'")
        workspace = Workspace(id=new_id("ws"), name=name, created_at=utcnow(),
                              budget_period=limits.pop("budget_period", None) or "month", **limits)
        return self._insert(workspace, f"a workspace named {name!r} already exists")

    def workspace(self, workspace_id: str) -> Workspace:
        with self.db.session() as s:
            found = s.get(Workspace, workspace_id) or s.scalar(select(Workspace).where(Workspace.name == workspace_id))
        if found is None:
            raise NotFound(f"workspace {workspace_id!r} not found")
        return found

    def list_workspaces(self) -> list[Workspace]:
        with self.db.session() as s:
            return list(s.scalars(select(Workspace).order_by(Workspace.created_at)))

    def update_limits(self, workspace_id: str, **limits) -> Workspace:
        with self.db.session() as s:
            workspace = s.get(Workspace, self.workspace(workspace_id).id)
            for name, value in limits.items():
                setattr(workspace, name, value)
            s.commit()
            return workspace

    # Users
    def create_user(self, workspace_id: str, email: str, role: str = "member") -> User:
        if role not in ROLES:
            raise AccountError(f"invalid role {role!r}: one of {', '.join(ROLES)}")
        workspace = self.workspace(workspace_id)
        user = User(id=new_id("user"), workspace_id=workspace.id, email=email, role=role, created_at=utcnow())
        return self._insert(user, f"user {email!r} already exists in workspace {workspace.name!r}")

    def list_users(self, workspace_id: str) -> list[User]:
        with self.db.session() as s:
            return list(s.scalars(select(User).where(User.workspace_id == workspace_id).order_by(User.created_at)))

    def user(self, user_id: str) -> User:
        with self.db.session() as s:
            found = s.get(User, user_id)
        if found is None:
            raise NotFound(f"user {user_id!r} not found")
        return found

    # API keys
    def create_key(self, user_id: str, name: str = "default", expires_at: datetime | None = None,
                   requests_per_minute: int | None = None,
                   tokens_per_minute: int | None = None) -> tuple[ApiKey, str]:
        """A new key for `user_id`; returns its record and the plaintext (shown once, never stored).
        `expires_at` is stored in UTC (SQLite keeps no offset): naive means UTC."""
        user = self.user(user_id)
        try:
            expires_at = as_utc(expires_at)
        except ValueError as exc:
            raise AccountError(f"expires_at: {exc}") from None
        if expires_at is not None and expires_at <= utcnow():
            raise AccountError("expires_at is in the past")
        material = key_material.generate()
        key = ApiKey(id=new_id("key"), prefix=material.prefix, secret_hash=material.secret_hash, name=name,
                     user_id=user.id, workspace_id=user.workspace_id, created_at=utcnow(),
                     expires_at=expires_at, requests_per_minute=requests_per_minute,
                     tokens_per_minute=tokens_per_minute)
        with self.db.session() as s:
            s.add(key)
            s.commit()
        return key, material.plaintext

    def list_keys(self, workspace_id: str | None = None) -> list[ApiKey]:
        query = select(ApiKey).order_by(ApiKey.created_at)
        if workspace_id is not None:
            query = query.where(ApiKey.workspace_id == workspace_id)
        with self.db.session() as s:
            return list(s.scalars(query))

    def revoke_key(self, key_id: str, workspace_id: str | None = None) -> ApiKey:
        """Revoke `key_id` (only within `workspace_id` when given)."""
        with self.db.session() as s:
            key = s.get(ApiKey, key_id) or s.scalar(select(ApiKey).where(ApiKey.prefix == key_id))
            if key is None or (workspace_id is not None and key.workspace_id != workspace_id):
                raise NotFound(f"API key {key_id!r} not found")
            if key.revoked_at is None:
                key.revoked_at = utcnow()
                s.commit()
            return key

    def authenticate(self, plaintext: str) -> Principal | None:
        """The principal a presented key stands for; None for unknown, revoked or expired keys."""
        prefix = key_material.prefix_of(plaintext)
        if prefix is None:
            return None
        with self.db.session() as s:
            row = s.execute(select(ApiKey, User.role).join(User, User.id == ApiKey.user_id)
                            .where(ApiKey.prefix == prefix)).first()
        if row is None:
            key_material.matches(plaintext, "0" * 64)  # same work whether or not the prefix exists
            return None
        key, role = row
        if not key_material.matches(plaintext, key.secret_hash) or key.revoked_at is not None:
            return None
        if key.expires_at is not None and as_utc(key.expires_at) <= utcnow():
            return None
        return Principal(workspace_id=key.workspace_id, key_id=key.id, user_id=key.user_id, role=role,
                         requests_per_minute=key.requests_per_minute, tokens_per_minute=key.tokens_per_minute)

    def has_users(self) -> bool:
        with self.db.session() as s:
            return bool(s.scalar(select(func.count()).select_from(User)))

    def bootstrap(self, email: str, workspace_name: str = "default") -> tuple[User, str]:
        """The first admin, in a new workspace, with a key. Refused once any user exists."""
        if self.has_users():
            raise Conflict("the platform already has users: create more with an admin key "
                           "(`plateforme admin users create`)")
        try:
            workspace = self.workspace(workspace_name)
        except NotFound:
            workspace = self.create_workspace(workspace_name)
        user = self.create_user(workspace.id, email, role="admin")
        _, plaintext = self.create_key(user.id, name="bootstrap")
        return user, plaintext
