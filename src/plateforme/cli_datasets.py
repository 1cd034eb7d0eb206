"""`plateforme datasets export`: a workspace's liked and corrected traces as a fine-tuning JSONL file.

Works directly on the platform's database and blob store (like `plateforme admin`): writes the
lines to a file or standard output, or stores them as a `fine-tune` file of the workspace
(`--upload`), whose id goes straight into a fine-tuning job's training_files.
"""

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path

from plateforme.files.service import FileService
from plateforme.settings import Settings
from plateforme.storage.blobs import open_blob_store
from plateforme.storage.database import open_database
from plateforme.tenancy.accounts import Accounts
from plateforme.tenancy.audit import AuditLog
from plateforme.tenancy.errors import AccountError
from plateforme.tenancy.principal import Principal
from plateforme.traces.dataset import KINDS
from plateforme.traces.errors import TraceError
from plateforme.traces.export import ExportCount, export_lines, export_to_files


def _since(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO date or time (e.g. 2026-01-31T12:00:00Z)") from None


def _summary(count: ExportCount, where: str) -> str:
    return f"exported {count.lines} lines ({count.liked} liked, {count.corrected} corrected) {where}"


def _write(lines, output: Path | None) -> None:
    if output is None:
        sys.stdout.writelines(lines)
        return
    partial = output.with_name(f".{output.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8") as f:
            f.writelines(lines)
        os.replace(partial, output)  # a reader never sees half a file
    finally:
        partial.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> None:
    settings = Settings()
    db = open_database(settings.resolved_database_url())
    include = tuple(args.include)
    try:
        workspace = Accounts(db).workspace(args.workspace)
        if args.upload:
            files = FileService(db, open_blob_store(settings.resolved_blob_store()), settings.max_upload_bytes)
            who = Principal(workspace_id=workspace.id, key_id=None, user_id=None, role="admin")
            record, count = export_to_files(db, files, who, args.since, include)
            AuditLog(db).record(None, "dataset.export", "file", record.id, "cli", workspace_id=workspace.id)
            print(_summary(count, f"to file {record.id} ({record.filename}, purpose fine-tune) "
                                  f"of workspace {workspace.name!r}"), file=sys.stderr)
            print(record.id)
        else:
            count = ExportCount()
            _write(export_lines(db, workspace.id, args.since, include, count), args.output)
            print(_summary(count, f"to {args.output or 'standard output'}"), file=sys.stderr)
    except (AccountError, TraceError) as exc:
        sys.exit(f"plateforme datasets: {exc}")
    except OSError as exc:
        sys.exit(f"plateforme datasets: cannot write the export: {exc}")
    finally:
        db.dispose()


def add_parser(sub) -> None:
    datasets = sub.add_parser("datasets", help="fine-tuning datasets made from captured traces")
    cmds = datasets.add_subparsers(dest="datasets_command", required=True)
    export = cmds.add_parser("export", help="liked and corrected traces of a workspace as fine-tuning JSONL")
    export.set_defaults(func=run)
    export.add_argument("--workspace", required=True, help="id or name")
    where = export.add_mutually_exclusive_group()
    where.add_argument("--output", type=Path, help="JSONL file to write (default: standard output)")
    where.add_argument("--upload", action="store_true",
                       help="store it as a fine-tune file of the workspace; prints the file id")
    export.add_argument("--since", type=_since, help="only traces captured from this ISO time on (UTC if no offset)")
    export.add_argument("--include", nargs="+", choices=KINDS, default=list(KINDS),
                        help="which traces to export (default: liked corrected)")
