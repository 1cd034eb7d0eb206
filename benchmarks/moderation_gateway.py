"""The servers benchmarks measure (bench_moderation.py, bench_agents.py): `plateforme serve` with
chosen models, moderation config (PLATEFORME_MODERATION_CONFIG) and settings, no auth, a temporary
data directory."""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from plateforme.engines.supervisor import free_loopback_port
from plateforme.models.registry import ModelRegistry


class BenchError(RuntimeError):
    """A server failed or answered an error: a bug to fix, not a measurement."""


def default_models() -> tuple[dict, dict]:
    """The packaged default chat model's and embedding model's config entries."""
    specs = ModelRegistry.from_file(None).specs
    chat = next(s for s in specs if not s.embedding)
    embedding = next(s for s in specs if s.embedding)
    return chat.model_dump(exclude_defaults=True), embedding.model_dump(exclude_defaults=True)


class Gateway:
    """`plateforme serve` with these models (None: the packaged defaults) and moderation config
    (None: the default one)."""

    def __init__(self, name: str, models: list[dict] | None, moderation: dict | None, env: dict | None = None):
        """`env`: settings for the server (PLATEFORME_* variables; the caller's own are not passed on)."""
        self.name, self.dir = name, Path(tempfile.mkdtemp(prefix=f"plateforme-bench-{name}-"))
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = env or {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLATEFORME_")}
        env.update(settings)
        env.update(PLATEFORME_DATA_DIR=str(self.dir / "data"), PLATEFORME_NO_AUTH="1", PLATEFORME_LOG_LEVEL="warning")
        args = [sys.executable, "-m", "plateforme.cli", "serve", "--port", str(self.port)]
        if models is not None:
            (self.dir / "models.yaml").write_text(yaml.safe_dump({"models": models}))
            args += ["--config", str(self.dir / "models.yaml")]
        if moderation is not None:
            (self.dir / "moderation.yaml").write_text(yaml.safe_dump(moderation))
            env["PLATEFORME_MODERATION_CONFIG"] = str(self.dir / "moderation.yaml")
        self.log_path = self.dir / "gateway.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def log_tail(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()[-3000:]

    def wait_healthy(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"the {self.name} server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=10).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise BenchError(f"the {self.name} server was not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
