"""The identity of one gateway's background runners (fine-tuning jobs, document ingestion).

A gateway restarted on the same data dir is the same runner: it takes back at once the work it
had claimed (its leases need not expire first), while other replicas wait for the lease.
"""

import os
import uuid
from pathlib import Path


def runner_id(data_dir: Path) -> str:
    """This data dir's runner id, made once (kept where the first version of the platform kept it)."""
    path = Path(data_dir) / "fine_tuning" / "runner_id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.part")
        tmp.write_text(f"runner-{uuid.uuid4().hex}\n")
        try:
            os.link(tmp, path)  # the first process to make one wins; the others read it
        except FileExistsError:
            pass
        tmp.unlink()
        return path.read_text().strip()
