"""Start a real `plateforme serve` process for tests, and stop it."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from cli_in_process import run_cli

from plateforme.models.registry import ModelRegistry

DEFAULT_MODEL = "smollm2-135m-instruct"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http_healthy(url: str, proc: subprocess.Popen, timeout: float = 120, log: Path | None = None) -> None:
    """Wait until `url`/health answers 200 (a bare llama.cpp server or worker started by a test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text()[-3000:] if log is not None else ""
            raise RuntimeError(f"{url} exited with {proc.returncode}: {tail}")
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not healthy after {timeout}s")


def default_model_entry(**overrides) -> dict:
    """The packaged default model's config entry, with test overrides (slots, queue...)."""
    spec = ModelRegistry.from_file(None).get(DEFAULT_MODEL)
    entry = spec.model_dump(exclude_defaults=True)
    entry.update(overrides)
    return entry


class ServerProcess:
    def __init__(self, workdir: Path, models: list[dict] | None = None, env: dict | None = None):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{self.port}.log"
        self.api_key = (env or {}).get("PLATEFORME_API_KEY")
        args = [sys.executable, "-m", "plateforme.cli", "serve", "--port", str(self.port)]
        if models is not None:
            config = workdir / f"models-{self.port}.yaml"
            config.write_text(yaml.safe_dump({"models": models}))
            args += ["--config", str(config)]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORME_")}
        full_env["PLATEFORME_DATA_DIR"] = str(workdir / "data")
        full_env.update(env or {})
        if "PLATEFORME_API_KEY" not in full_env and "PLATEFORME_NO_AUTH" not in full_env:
            full_env["PLATEFORME_NO_AUTH"] = "1"
        self.env = full_env
        if full_env.get("PLATEFORME_NO_AUTH") == "false" and not self.api_key:
            # Real keys: the first admin is created before the server starts, as an operator would.
            self.api_key = self.admin("bootstrap", "--email", "admin@example.com").splitlines()[-1]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=full_env)

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def wait_healthy(self, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log(4000)}")
            try:
                last = httpx.get(f"{self.url}/health", headers=self.headers, timeout=20)
                if last.status_code == 200:
                    return last.json()
                if last.status_code == 401 and not self.api_key:
                    return {}  # up, and refusing callers without a key, as it should with none configured
                if last.status_code == 401:
                    raise RuntimeError(f"/health refused the test key: {last.text}")
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not healthy after {timeout}s (last: {last and last.text}):\n{self.log(4000)}")

    def health(self) -> httpx.Response:
        return httpx.get(f"{self.url}/health", headers=self.headers, timeout=20)

    def worker_pid(self, model: str = DEFAULT_MODEL) -> int:
        body = self.health().json()
        return next(m["pid"] for m in body["models"] if m["model"] == model)

    def admin(self, *args: str) -> str:
        """Run `plateforme admin ARGS` on this server's database; return its standard output.

        In the test process (cli_in_process.py: the same code, without a subprocess's 2 s of imports)."""
        done = run_cli("admin", *args, env=self.env)
        if done.returncode:
            raise RuntimeError(f"plateforme admin {' '.join(args)} failed: {done.stderr}")
        return done.stdout.strip()

    def log(self, tail: int | None = None) -> str:
        """The server's log (its last `tail` characters when given)."""
        self._log.flush()
        text = self.log_path.read_text()
        return text[-tail:] if tail else text

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
