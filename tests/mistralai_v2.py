"""The `mistralai` 2.5.1 SDK (the last one with `fine_tuning.jobs`), in its own virtual environment.

The suite's main environment has the current SDK (3.x); fine-tuning is driven through 2.5.1 as
the issue asks, so it lives in `.venv-mistralai2` (created here on first use, from PyPI) and each
call runs there in a subprocess: `call(server, key, code)` runs `code` with `client` bound to a
`Mistral` client of the server; the code assigns `result`, which comes back as JSON.
"""

import fcntl
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-mistralai2"
PYTHON = VENV / "bin" / "python"
VERSION = "2.5.1"

RUNNER = """
import json, sys
from mistralai.client import Mistral
from mistralai.client.errors import MistralError
client = Mistral(api_key=sys.argv[1], server_url=sys.argv[2], timeout_ms=300000)
def dump(value):
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, (list, tuple)):
        return [dump(v) for v in value]
    return value
result = None
try:
{code}
except MistralError as exc:
    result = {{"sdk_error": exc.status_code, "body": exc.body}}
print("RESULT " + json.dumps(dump(result)))
"""


def ensure_sdk() -> Path:
    with open(ROOT / ".venv-mistralai2.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (VENV / f".mistralai-{VERSION}").exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", f"mistralai=={VERSION}"], check=True)
            (VENV / f".mistralai-{VERSION}").touch()
    return PYTHON


def call(url: str, key: str | None, code: str, timeout: float = 300):
    """Run SDK `code` against the server at `url`; return its `result` (SDK errors as a dict)."""
    source = RUNNER.format(code=textwrap.indent(textwrap.dedent(code).strip(), "    "))
    done = subprocess.run([str(ensure_sdk()), "-c", source, key or "no-key", url], capture_output=True,
                          text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"mistralai {VERSION} call failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])
