"""`plateforme admin ...`: bootstrap the first admin, manage workspaces, users, keys; read the audit log.

Works directly on the platform's database (PLATEFORME_DATABASE_URL or the data directory), so it
runs on the server machine with or without the server running. Every change is audited.
"""

import argparse
import sys
from datetime import datetime, timedelta

from plateforme.settings import Settings
from plateforme.storage.database import open_database
from plateforme.storage.int_range import int_max
from plateforme.storage.tables import ApiKey, Workspace
from plateforme.tenancy.accounts import Accounts
from plateforme.tenancy.audit import AuditLog
from plateforme.tenancy.errors import AccountError
from plateforme.tenancy.ids import utcnow
from plateforme.traces.switch import CACHE_SECONDS


def _services() -> tuple[Accounts, AuditLog]:
    db = open_database(Settings().resolved_database_url())
    return Accounts(db), AuditLog(db)


def _table(rows: list[tuple], header: tuple) -> None:
    widths = [max(len(str(v)) for v in col) for col in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())


def _limits(args) -> dict:
    return {k: v for k, v in {"requests_per_minute": args.rpm, "tokens_per_minute": args.tpm,
                              "token_budget": getattr(args, "budget", None),
                              "budget_period": getattr(args, "period", None)}.items() if v is not None}


def _bounded(lowest: int, highest: int):
    """An argparse type: an integer from `lowest` to `highest` (the range of the column it is stored in)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lowest <= value <= highest:
            raise argparse.ArgumentTypeError(f"{value} is out of range: from {lowest} to {highest}")
        return value
    return parse


def _moment(text: str) -> datetime:
    """An ISO 8601 time; with an offset it is converted to UTC (by Accounts), without one it is UTC."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time (e.g. 2030-01-31T18:00+01:00)") from None


def _key_expiry(args) -> datetime | None:
    if args.expires_at is not None:
        return args.expires_at
    if not args.expires_in_days:
        return None
    try:
        return utcnow() + timedelta(days=args.expires_in_days)
    except (OverflowError, ValueError):
        raise SystemExit(f"plateforme admin: --expires-in-days {args.expires_in_days:g} is too far away") from None


def run(args: argparse.Namespace) -> None:
    accounts, audit = _services()
    try:
        _dispatch(args, accounts, audit)
    except AccountError as exc:
        sys.exit(f"plateforme admin: {exc}")


def _dispatch(args, accounts: Accounts, audit: AuditLog) -> None:
    what = (args.admin_command, getattr(args, "action", None))
    if what[0] == "bootstrap":
        if args.if_none and accounts.has_users():
            return
        user, key = accounts.bootstrap(args.email, args.workspace)
        audit.record(None, "admin.bootstrap", "user", user.id, "cli", workspace_id=user.workspace_id)
        print(f"Admin {user.email} created in workspace {args.workspace!r}. API key (shown once, store it now):")
        print(key)
    elif what == ("workspaces", "create"):
        ws = accounts.create_workspace(args.name, **_limits(args))
        audit.record(None, "workspace.create", "workspace", ws.id, "cli", workspace_id=ws.id)
        print(ws.id)
    elif what == ("workspaces", "limits"):
        ws = accounts.update_limits(args.workspace, **_limits(args))
        audit.record(None, "workspace.limits", "workspace", ws.id, "cli", _limits(args), workspace_id=ws.id)
        print(f"{ws.name}: rpm={ws.requests_per_minute} tpm={ws.tokens_per_minute} "
              f"budget={ws.token_budget}/{ws.budget_period}")
    elif what == ("workspaces", "capture"):
        ws = accounts.update_limits(args.workspace, capture_traces=args.state == "on")
        audit.record(None, "workspace.capture_traces", "workspace", ws.id, "cli", {"capture_traces": ws.capture_traces},
                     workspace_id=ws.id)
        print(f"{ws.name}: trace capture {args.state} (a running server applies it within {CACHE_SECONDS:g} s)")
    elif what == ("workspaces", "list"):
        _table([(w.id, w.name, w.requests_per_minute, w.tokens_per_minute, w.token_budget, w.budget_period,
                 "on" if w.capture_traces else "off") for w in accounts.list_workspaces()],
               ("ID", "NAME", "RPM", "TPM", "BUDGET", "PERIOD", "TRACES"))
    elif what == ("users", "create"):
        user = accounts.create_user(accounts.workspace(args.workspace).id, args.email, args.role)
        audit.record(None, "user.create", "user", user.id, "cli", workspace_id=user.workspace_id)
        print(user.id)
    elif what == ("users", "list"):
        _table([(u.id, u.email, u.role) for u in accounts.list_users(accounts.workspace(args.workspace).id)],
               ("ID", "EMAIL", "ROLE"))
    elif what == ("keys", "create"):
        key, plaintext = accounts.create_key(args.user, args.name, _key_expiry(args), args.rpm, args.tpm)
        audit.record(None, "key.create", "api_key", key.id, "cli", workspace_id=key.workspace_id)
        print(f"Key {key.prefix} ({key.id}) for {args.user}. Shown once, store it now:", file=sys.stderr)
        print(plaintext)
    elif what == ("keys", "list"):
        workspace = accounts.workspace(args.workspace).id if args.workspace else None
        _table([(k.id, k.prefix, k.name, k.workspace_id, k.user_id, k.expires_at or "-",
                 "revoked" if k.revoked_at else "active") for k in accounts.list_keys(workspace)],
               ("ID", "PREFIX", "NAME", "WORKSPACE", "USER", "EXPIRES", "STATE"))
    elif what == ("keys", "revoke"):
        key = accounts.revoke_key(args.key)
        audit.record(None, "key.revoke", "api_key", key.id, "cli", workspace_id=key.workspace_id)
        print(f"revoked {key.prefix}")
    elif what[0] == "usage":
        from plateforme.usage.meter import UsageMeter

        workspace = accounts.workspace(args.workspace).id if args.workspace else None
        rows = UsageMeter(accounts.db).summary(args.by, workspace, args.start, args.end)
        _table([(r.get("workspace_id", workspace), r[args.by], r["requests"], r["prompt_tokens"],
                 r["completion_tokens"], r["total_tokens"]) for r in rows],
               ("WORKSPACE", args.by.upper(), "REQUESTS", "PROMPT", "COMPLETION", "TOTAL"))
    elif what[0] == "database":
        from plateforme import cli_databases

        cli_databases.run(args, accounts, audit)
    elif what[0] == "mcp":
        from plateforme import cli_mcp

        cli_mcp.run(args, accounts, audit)
    elif what[0] == "audit":
        workspace = accounts.workspace(args.workspace).id if args.workspace else None
        _table([(e.at.isoformat(timespec="seconds"), e.workspace_id or "-", e.actor_user_id or e.actor_key_id or "-",
                 e.action, f"{e.resource_type or ''}:{e.resource_id or ''}", e.address or "-")
                for e in reversed(audit.events(workspace, limit=args.limit))],
               ("AT", "WORKSPACE", "ACTOR", "ACTION", "RESOURCE", "ADDRESS"))


def add_parser(sub) -> None:
    admin = sub.add_parser("admin", help="workspaces, users, API keys, audit log")
    admin.set_defaults(func=run)
    cmds = admin.add_subparsers(dest="admin_command", required=True)
    boot = cmds.add_parser("bootstrap", help="create the first admin user and key")
    boot.add_argument("--email", required=True)
    boot.add_argument("--workspace", default="default")
    boot.add_argument("--if-none", action="store_true", help="do nothing when users exist already")

    def limit_flags(p, with_budget: bool) -> None:
        table = Workspace if with_budget else ApiKey
        p.add_argument("--rpm", type=_bounded(1, int_max(table.requests_per_minute)), help="requests per minute")
        p.add_argument("--tpm", type=_bounded(1, int_max(table.tokens_per_minute)), help="tokens per minute")
        if with_budget:
            p.add_argument("--budget", type=_bounded(0, int_max(Workspace.token_budget)),
                           help="tokens per budget period")
            p.add_argument("--period", choices=["day", "month"])

    ws = cmds.add_parser("workspaces").add_subparsers(dest="action", required=True)
    create = ws.add_parser("create")
    create.add_argument("name")
    limit_flags(create, True)
    limits = ws.add_parser("limits", help="set a workspace's limits")
    limits.add_argument("workspace", help="id or name")
    limit_flags(limits, True)
    capture = ws.add_parser("capture", help="turn the capture of chat completion traces on or off")
    capture.add_argument("workspace", help="id or name")
    capture.add_argument("state", choices=["on", "off"])
    ws.add_parser("list")
    users = cmds.add_parser("users").add_subparsers(dest="action", required=True)
    ucreate = users.add_parser("create")
    ucreate.add_argument("--workspace", required=True, help="id or name")
    ucreate.add_argument("--email", required=True)
    ucreate.add_argument("--role", choices=["admin", "member"], default="member")
    users.add_parser("list").add_argument("--workspace", required=True)
    keys = cmds.add_parser("keys").add_subparsers(dest="action", required=True)
    kcreate = keys.add_parser("create")
    kcreate.add_argument("--user", required=True, help="user id")
    kcreate.add_argument("--name", default="default")
    expiry = kcreate.add_mutually_exclusive_group()
    expiry.add_argument("--expires-in-days", type=float)
    expiry.add_argument("--expires-at", type=_moment,
                        help="ISO 8601 time, e.g. 2030-01-31T18:00+01:00 (converted to UTC; no offset = UTC)")
    limit_flags(kcreate, False)
    keys.add_parser("list").add_argument("--workspace")
    keys.add_parser("revoke").add_argument("key", help="key id or prefix")
    usage = cmds.add_parser("usage", help="tokens used, by day or by model")
    usage.add_argument("--workspace", help="id or name (default: all workspaces)")
    usage.add_argument("--by", choices=["day", "model"], default="day")
    usage.add_argument("--start", help="first day, YYYY-MM-DD")
    usage.add_argument("--end", help="last day, YYYY-MM-DD")
    from plateforme import cli_databases

    cli_databases.add_parser(cmds)
    from plateforme import cli_mcp

    cli_mcp.add_parser(cmds)
    audit = cmds.add_parser("audit", help="read the audit log")
    audit.add_argument("--workspace")
    audit.add_argument("--limit", type=int, default=100)
