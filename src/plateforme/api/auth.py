"""Authentication of every request: an API key (from `plateforme admin` or PLATEFORME_API_KEY).

Key lookups are cached for a few seconds so a key check costs no database round trip on the
hot path; a revoked key therefore stops working within KEY_CACHE_SECONDS, on every gateway replica
of the database (each one re-reads the key once its cached entry is older than that, whichever
replica revoked it; tests/test_replicas.py).
"""

import hmac
import time

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from plateforme.api.errors import APIError
from plateforme.tenancy.principal import DEV_PRINCIPAL, Principal

KEY_CACHE_SECONDS = 2.0
STATIC_KEY_PRINCIPAL = Principal(workspace_id=DEV_PRINCIPAL.workspace_id, key_id="static", user_id=None, role="admin")


class KeyCache:
    def __init__(self):
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    def get(self, token: str) -> tuple[bool, Principal | None]:
        entry = self._entries.get(token)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, token: str, principal: Principal | None) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[token] = (time.monotonic() + KEY_CACHE_SECONDS, principal)


def _unauthorized(message: str) -> APIError:
    return APIError(401, message, type="unauthorized", headers={"WWW-Authenticate": "Bearer"})


async def authenticate(request: Request) -> Principal:
    state = request.app.state
    if state.settings.no_auth:
        request.state.principal = DEV_PRINCIPAL
        return DEV_PRINCIPAL
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Missing API key: send `Authorization: Bearer <key>` "
                            "(create keys with `plateforme admin keys create`).")
    static = state.settings.api_key
    if static is not None and hmac.compare_digest(token.encode(), static.get_secret_value().encode()):
        principal = STATIC_KEY_PRINCIPAL
    else:
        hit, principal = state.key_cache.get(token)
        if not hit:
            principal = await run_in_threadpool(state.accounts.authenticate, token)
            state.key_cache.put(token, principal)
    if principal is None:
        raise _unauthorized("Invalid, revoked or expired API key.")
    request.state.principal = principal
    return principal


def require_admin(request: Request) -> Principal:
    principal: Principal = request.state.principal
    if not principal.is_admin:
        raise APIError(403, "This route needs an admin key.", type="forbidden")
    return principal
