"""`plateforme admin database add|list|remove`: a workspace's database connectors, from the server
machine (directly on the platform's database, like the rest of `plateforme admin`).

    plateforme admin database add --workspace acme --name company \\
        --url 'postgresql://reader:${COMPANY_DB_PASSWORD}@db/company' \\
        --table orders --table 'customers:id,name,city' [--row-cap 100] [--timeout 3]
    plateforme admin database list --workspace acme
    plateforme admin database remove --workspace acme company

`add` tries the connection and checks the tables first, as POST /v1/admin/workspaces/{id}/databases
does (docs/connectors.md); run it where the server's environment (the `${VAR}`s) is set.
"""

import asyncio
import sys

from plateforme.agents.errors import AgentsError
from plateforme.connectors.database_config import parse_database_config
from plateforme.connectors.database_reader import DatabaseReader
from plateforme.connectors.store import ConnectorStore
from plateforme.settings import Settings


def add_parser(cmds) -> None:
    db = cmds.add_parser("database", help="database connectors of a workspace").add_subparsers(dest="action",
                                                                                                required=True)
    add = db.add_parser("add", help="register a database (the connection and tables are checked first)")
    add.add_argument("--workspace", required=True, help="id or name")
    add.add_argument("--name", required=True, help="what agents name in connector_id")
    add.add_argument("--url", required=True, help="sqlite:////path.db or postgresql://user:${VAR}@host/db")
    add.add_argument("--table", action="append", required=True, metavar="TABLE[:COL,COL...]",
                     help="a readable table, with its readable columns (all when none); repeat it")
    add.add_argument("--description")
    add.add_argument("--row-cap", type=int)
    add.add_argument("--timeout", type=float, help="seconds a query may run")
    db.add_parser("list").add_argument("--workspace", required=True)
    remove = db.add_parser("remove")
    remove.add_argument("--workspace", required=True)
    remove.add_argument("name")


def _tables(specs: list[str]) -> dict:
    out = {}
    for spec in specs:
        table, _, columns = spec.partition(":")
        out[table.strip()] = [c.strip() for c in columns.split(",") if c.strip()] if columns else "*"
    return out


def run(args, accounts, audit) -> None:
    try:
        _run(args, accounts, audit)
    except AgentsError as exc:
        sys.exit(f"plateforme admin database: {exc}")


def _run(args, accounts, audit) -> None:
    store = ConnectorStore(accounts.db)
    workspace = accounts.workspace(args.workspace).id
    if args.action == "add":
        config = parse_database_config({"url": args.url, "tables": _tables(args.table), "row_cap": args.row_cap,
                                        "timeout_s": args.timeout}, Settings())
        warnings = asyncio.run(DatabaseReader(config).check())
        record = store.add(workspace, args.name, "database", args.description, config.as_stored())
        audit.record(None, "database.create", "connector", record.id, "cli",
                     {"name": record.name, "kind": "database", "tables": sorted(config.tables)},
                     workspace_id=workspace)
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(record.id)
    elif args.action == "list":
        rows = [(r.id, r.name, r.config["url"], ", ".join(r.config["tables"]), r.config["row_cap"],
                 r.config["timeout_s"]) for r in store.list(workspace, "database")]
        header = ("ID", "NAME", "URL", "TABLES", "ROW_CAP", "TIMEOUT_S")
        widths = [max(len(str(v)) for v in col) for col in zip(header, *rows)]
        for row in (header, *rows):
            print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    elif args.action == "remove":
        record = store.delete(workspace, args.name, "database")
        audit.record(None, "database.delete", "connector", record.id, "cli", {"name": record.name, "kind": "database"},
                     workspace_id=workspace)
        print(f"removed {record.name}")
