"""Admin API: workspaces and their limits, users, API keys, the audit log (admin keys only)."""

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from plateforme.api.auth import require_admin
from plateforme.api.schemas.admin import KeyIn, Limits, UserIn, WorkspaceIn
from plateforme.tenancy.ids import as_utc

router = APIRouter(prefix="/v1/admin", dependencies=[Depends(require_admin)])


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _epoch(moment) -> int | None:
    """Seconds since the epoch of a stored time (UTC, even where SQLite hands it back naive)."""
    return int(as_utc(moment).timestamp()) if moment is not None else None


def _workspace_out(w) -> dict:
    return {"id": w.id, "object": "workspace", "name": w.name, "created_at": _epoch(w.created_at),
            "requests_per_minute": w.requests_per_minute, "tokens_per_minute": w.tokens_per_minute,
            "token_budget": w.token_budget, "budget_period": w.budget_period, "capture_traces": w.capture_traces}


def _key_out(k) -> dict:
    return {"id": k.id, "object": "api_key", "prefix": k.prefix, "name": k.name, "user_id": k.user_id,
            "workspace_id": k.workspace_id, "created_at": _epoch(k.created_at),
            "expires_at": _epoch(k.expires_at),
            "revoked": k.revoked_at is not None,
            "requests_per_minute": k.requests_per_minute, "tokens_per_minute": k.tokens_per_minute}


async def _do(request: Request, action: str, resource: str, fn, *args, **kwargs):
    """Run an account operation off the event loop and audit it."""
    result = await run_in_threadpool(fn, *args, **kwargs)
    target = result[0] if isinstance(result, tuple) else result
    workspace_id = target.id if resource == "workspace" else target.workspace_id
    await request.app.state.audit.arecord(request.state.principal, action, resource, target.id, _address(request),
                                          workspace_id=workspace_id)
    return result


@router.post("/workspaces")
async def create_workspace(body: WorkspaceIn, request: Request) -> dict:
    accounts = request.app.state.accounts
    limits = body.model_dump(exclude={"name"}, exclude_none=True)
    return _workspace_out(await _do(request, "workspace.create", "workspace", accounts.create_workspace,
                                    body.name, **limits))


@router.get("/workspaces")
async def list_workspaces(request: Request) -> dict:
    rows = await run_in_threadpool(request.app.state.accounts.list_workspaces)
    return {"object": "list", "data": [_workspace_out(w) for w in rows]}


@router.patch("/workspaces/{workspace_id}")
async def update_limits(workspace_id: str, body: Limits, request: Request) -> dict:
    accounts = request.app.state.accounts
    changes = body.model_dump(exclude_unset=True)
    workspace = await _do(request, "workspace.limits", "workspace", accounts.update_limits, workspace_id, **changes)
    request.app.state.billing.forget(workspace.id)
    request.app.state.traces.forget(workspace.id)
    if "capture_traces" in changes:
        await request.app.state.audit.arecord(request.state.principal, "workspace.capture_traces", "workspace",
                                              workspace.id, _address(request), changes, workspace_id=workspace.id)
    return _workspace_out(workspace)


@router.post("/workspaces/{workspace_id}/users")
async def create_user(workspace_id: str, body: UserIn, request: Request) -> dict:
    user = await _do(request, "user.create", "user", request.app.state.accounts.create_user,
                     workspace_id, body.email, body.role)
    return {"id": user.id, "object": "user", "email": user.email, "role": user.role, "workspace_id": user.workspace_id}


@router.get("/workspaces/{workspace_id}/users")
async def list_users(workspace_id: str, request: Request) -> dict:
    accounts = request.app.state.accounts
    workspace = await run_in_threadpool(accounts.workspace, workspace_id)
    users = await run_in_threadpool(accounts.list_users, workspace.id)
    return {"object": "list", "data": [{"id": u.id, "object": "user", "email": u.email, "role": u.role,
                                        "workspace_id": u.workspace_id} for u in users]}


@router.post("/keys")
async def create_key(body: KeyIn, request: Request) -> dict:
    key, plaintext = await _do(request, "key.create", "api_key", request.app.state.accounts.create_key,
                               body.user_id, body.name, body.expires_at, body.requests_per_minute,
                               body.tokens_per_minute)
    return {**_key_out(key), "key": plaintext}  # the only time the key is shown


@router.get("/keys")
async def list_keys(request: Request, workspace_id: str | None = None) -> dict:
    rows = await run_in_threadpool(request.app.state.accounts.list_keys, workspace_id)
    return {"object": "list", "data": [_key_out(k) for k in rows]}


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request) -> dict:
    key = await _do(request, "key.revoke", "api_key", request.app.state.accounts.revoke_key, key_id)
    return _key_out(key)


@router.get("/audit")
async def audit_events(request: Request, workspace_id: str | None = None, limit: int = 100) -> dict:
    events = await run_in_threadpool(request.app.state.audit.events, workspace_id, None, min(max(limit, 1), 1000))
    return {"object": "list", "data": [
        {"id": e.id, "at": e.at.isoformat(), "workspace_id": e.workspace_id, "actor_user_id": e.actor_user_id,
         "actor_key_id": e.actor_key_id, "action": e.action, "resource_type": e.resource_type,
         "resource_id": e.resource_id, "address": e.address, "detail": e.detail} for e in events]}
