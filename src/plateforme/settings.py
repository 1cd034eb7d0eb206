"""Process-wide settings, read from `PLATEFORME_*` environment variables."""

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PLATEFORME_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    # YAML file declaring the served models. When unset: the packaged default models plus the
    # models imported into `data_dir` (`plateforme models import`).
    config: Path | None = None
    # Where the platform keeps its own data: imported models and their registry, ...
    data_dir: Path = Path("~/.plateforme").expanduser()
    # When set, every request must carry `Authorization: Bearer <api_key>`.
    api_key: SecretStr | None = None
    # Seconds a worker may take to load its model before it counts as failed.
    worker_start_timeout: float = 180.0
    # Seconds the /health generation probe may take per model.
    health_probe_timeout: float = 15.0
    # Seconds a request may wait for its first byte from a worker.
    engine_timeout: float = 600.0
    log_level: str = "info"
