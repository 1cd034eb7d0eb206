"""Run `plateforme ARGS` (plateforme.cli.main) inside the test process, with a given environment.

A `python -m plateforme.cli` subprocess spends about 2 s of CPU importing the platform before it
does anything; dozens of admin and export commands in the suite took a minute of a 2-core
machine that way. In the test process the modules are imported once and each command costs
milliseconds. It is the same code (argument parsing, settings from PLATEFORME_* variables, the
database and blob store named there, the same prints and exit codes); test_cli.py keeps running
the real `python -m plateforme.cli` entry point as a subprocess.
"""

import contextlib
import io
import os
import threading
from dataclasses import dataclass

_ENV_LOCK = threading.Lock()  # os.environ is the process's: one command at a time


@dataclass(frozen=True)
class CliResult:
    """What subprocess.run(..., capture_output=True, text=True) would have returned."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict) -> CliResult:
    """`plateforme ARGS` with the PLATEFORME_* variables of `env` (and no others) set while it runs."""
    from plateforme.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _ENV_LOCK:
        saved = {k: v for k, v in os.environ.items() if k.startswith("PLATEFORME_")}
        for key in saved:
            del os.environ[key]
        os.environ.update({k: v for k, v in env.items() if k.startswith("PLATEFORME_")})
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    main(list(args))
                    code = 0
                except SystemExit as exc:  # sys.exit(message) prints it and exits 1, as a process would
                    if exc.code is None or isinstance(exc.code, int):
                        code = exc.code or 0
                    else:
                        print(exc.code, file=err)
                        code = 1
        finally:
            for key in [k for k in os.environ if k.startswith("PLATEFORME_")]:
                del os.environ[key]
            os.environ.update(saved)
    return CliResult(tuple(args), code, out.getvalue(), err.getvalue())
