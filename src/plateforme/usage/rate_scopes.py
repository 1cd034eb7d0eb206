"""What a request is counted against: its workspace and, when it has one, its API key."""

from dataclasses import dataclass

from plateforme.storage.tables import Workspace
from plateforme.tenancy.principal import Principal

WINDOW_S = 60.0


class RateLimited(Exception):
    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


@dataclass(frozen=True)
class Scope:
    name: str  # ws:<workspace id> | key:<key id>
    rpm: int | None
    tpm: int | None
    label: str  # how the error names it


def scopes_of(who: Principal, workspace: Workspace) -> list[Scope]:
    scopes = [Scope(f"ws:{who.workspace_id}", workspace.requests_per_minute, workspace.tokens_per_minute,
                    "workspace")]
    if who.key_id:
        scopes.append(Scope(f"key:{who.key_id}", who.requests_per_minute, who.tokens_per_minute, "API key"))
    return scopes


def scope_names(who: Principal) -> list[str]:
    return [f"ws:{who.workspace_id}"] + ([f"key:{who.key_id}"] if who.key_id else [])


def refuse(scope: Scope, what: str, wait_s: float):
    """Raise the RateLimited of `scope`'s `what` ("requests" or "tokens") limit, retry in `wait_s`."""
    limit = scope.rpm if what == "requests" else scope.tpm
    raise RateLimited(f"{scope.label} limit of {limit} {what} per minute reached", int(wait_s) + 1)
