"""`plateforme admin mcp add|list|remove`: a workspace's MCP servers, from the server machine
(directly on the platform's database, like the rest of `plateforme admin`).

    plateforme admin mcp add --workspace acme --name shop --command /opt/shop/bin/python \\
        --arg=-m --arg shop_mcp --env 'SHOP_TOKEN=${SHOP_TOKEN}' --confirm restock [--cwd /opt/shop] [--timeout 10]
    plateforme admin mcp add --workspace acme --name crm --url https://crm.internal/mcp \\
        --header 'Authorization=Bearer ${CRM_TOKEN}'
    plateforme admin mcp list --workspace acme
    plateforme admin mcp remove --workspace acme shop

`add` starts the server and lists its tools first, as POST /v1/admin/workspaces/{id}/mcp-servers
does (docs/mcp.md); run it where the server's environment (the `${VAR}`s) is set. A running
platform stops offering a removed server's tools at once; its open session ends when idle.
"""

import asyncio
import sys
import uuid

from plateforme.agents.errors import AgentsError
from plateforme.connectors.mcp_config import check_timeout, parse_config
from plateforme.connectors.mcp_tools import McpTools
from plateforme.connectors.store import ConnectorStore, check_name
from plateforme.settings import Settings


def add_parser(cmds) -> None:
    mcp = cmds.add_parser("mcp", help="MCP servers of a workspace").add_subparsers(dest="action", required=True)
    add = mcp.add_parser("add", help="register an MCP server (it is started and its tools listed first)")
    add.add_argument("--workspace", required=True, help="id or name")
    add.add_argument("--name", required=True, help="what agents name in connector_id")
    where = add.add_mutually_exclusive_group(required=True)
    where.add_argument("--command", help="stdio: the server's executable")
    where.add_argument("--url", help="streamable HTTP: the MCP endpoint")
    add.add_argument("--arg", action="append", default=[], help="stdio: one argument (--arg=-m for a dash); repeat")
    add.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                     help="stdio: an environment variable of the server (VALUE may be ${VAR}); repeat")
    add.add_argument("--cwd", help="stdio: the server's working directory (absolute)")
    add.add_argument("--header", action="append", default=[], metavar="NAME=VALUE",
                     help="HTTP: a header sent with every request (VALUE may be ${VAR}); repeat")
    add.add_argument("--confirm", action="append", default=[], metavar="TOOL",
                     help="a tool that waits for the user's confirmation; repeat")
    add.add_argument("--timeout", type=float, help="seconds a call may take")
    add.add_argument("--description")
    mcp.add_parser("list").add_argument("--workspace", required=True)
    remove = mcp.add_parser("remove")
    remove.add_argument("--workspace", required=True)
    remove.add_argument("name")


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            sys.exit(f"plateforme admin mcp: {flag} {value!r}: give NAME=VALUE")
        out[name] = rest
    return out


def _config(args) -> dict:
    common = {"requires_confirmation": args.confirm, "timeout_s": args.timeout}
    if args.command:
        return {"transport": "stdio", "command": args.command, "args": args.arg, "env": _pairs(args.env, "--env"),
                "cwd": args.cwd, **common}
    return {"transport": "streamable_http", "url": args.url, "headers": _pairs(args.header, "--header"), **common}


async def _trial(name: str, config, settings: Settings) -> list:
    tools = McpTools(settings)
    try:
        return await tools.trial(f"cli:{uuid.uuid4()}", name, config)
    finally:
        await tools.close()


def run(args, accounts, audit) -> None:
    try:
        _run(args, accounts, audit)
    except AgentsError as exc:
        sys.exit(f"plateforme admin mcp: {exc}")


def _run(args, accounts, audit) -> None:
    store = ConnectorStore(accounts.db)
    workspace = accounts.workspace(args.workspace).id
    if args.action == "add":
        settings = Settings()
        check_name(args.name)
        config = parse_config(_config(args), "")
        check_timeout(config, settings.mcp_timeout_s)
        tools = asyncio.run(_trial(args.name, config, settings))
        record = store.add(workspace, args.name, "mcp", args.description, config.model_dump())
        audit.record(None, "mcp_server.create", "connector", record.id, "cli",
                     {"name": record.name, "kind": "mcp", "transport": config.transport}, workspace_id=workspace)
        print(f"tools: {', '.join(t.name for t in tools) or 'none'}", file=sys.stderr)
        print(record.id)
    elif args.action == "list":
        rows = [(r.id, r.name, r.config["transport"], r.config.get("url") or " ".join(
                    [r.config["command"], *r.config.get("args", [])]), ", ".join(r.config["requires_confirmation"]))
                for r in store.list(workspace, "mcp")]
        header = ("ID", "NAME", "TRANSPORT", "SERVER", "CONFIRM")
        widths = [max(len(str(v)) for v in col) for col in zip(header, *rows)]
        for row in (header, *rows):
            print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    elif args.action == "remove":
        record = store.delete(workspace, args.name, "mcp")
        audit.record(None, "mcp_server.delete", "connector", record.id, "cli", {"name": record.name, "kind": "mcp"},
                     workspace_id=workspace)
        print(f"removed {record.name}")
