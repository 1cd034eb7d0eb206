"""Who is calling: the authenticated key, its user and workspace, and the role it acts with."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    workspace_id: str
    key_id: str | None
    user_id: str | None
    role: str  # "admin" | "member"
    # Per-key limits (None = only the workspace's limits apply).
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


# The principal of --no-auth development mode: one implicit workspace with admin rights.
DEV_WORKSPACE = "ws_default"
DEV_PRINCIPAL = Principal(workspace_id=DEV_WORKSPACE, key_id=None, user_id=None, role="admin")
