"""Process-wide settings, read from `PLATEFORME_*` environment variables."""

from pathlib import Path
from typing import Literal

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
    # Database URL (sqlite:///..., postgresql://user:pass@host/db); SQLite in `data_dir` when unset.
    database_url: str | None = None
    # Where uploaded files live: a directory, or s3://bucket/prefix; `data_dir`/blobs when unset.
    blob_store: str | None = None
    # Largest accepted request body other than uploads (bytes); larger ones get 413.
    max_request_bytes: int = 8 * 1024 * 1024
    # Largest accepted upload (bytes); larger ones get 413.
    max_upload_bytes: int = 512 * 1024 * 1024
    # Key for signed file links; generated into `data_dir` when unset (share it between nodes).
    url_signing_key: str | None = None
    # Development only: serve without authentication (every caller is the admin of one workspace).
    no_auth: bool = False
    # A static admin key, for single-user set-ups and tests; keys from `plateforme admin` also work.
    api_key: SecretStr | None = None
    # Seconds a worker may take to load its model before it counts as failed.
    worker_start_timeout: float = 180.0
    # Seconds the /health generation probe may take per model.
    health_probe_timeout: float = 15.0
    # Seconds a /health probe result is reused (concurrent checks share one probe per worker anyway).
    health_cache_s: float = 2.0
    # Seconds a client has to send a request's headers (from connecting, or from the end of the
    # previous response on a kept-alive connection); slower ones get 408 and are disconnected.
    header_timeout: float = 10.0
    # Seconds a request body may pause between two reads before the request gets 408 ...
    body_timeout: float = 30.0
    # ... and, after its first `body_timeout` seconds, the slowest average rate (bytes/s) it may arrive at.
    body_min_rate: int = 1024
    # Seconds a request may wait for its first byte from a worker.
    engine_timeout: float = 600.0
    # Where rate-limit windows are counted: "memory" (this process), "database" (shared by every
    # replica on the database), or "auto": database on PostgreSQL, memory on SQLite.
    limits_backend: Literal["auto", "memory", "database"] = "auto"
    # Seconds between two re-reads of the fine-tuned models table (another replica's new, archived
    # or deleted fine-tunes are served, or stop being served, within this delay).
    fine_tunes_refresh_s: float = 5.0
    # Fine-tuning jobs trained at the same time by this gateway (each uses all `training_threads`).
    fine_tuning_max_jobs: int = 1
    # Whether this gateway runs fine-tuning jobs (several replicas may: each job is claimed by one).
    fine_tuning_runner: bool = True
    # CPU threads per training process (all cores when unset).
    training_threads: int | None = None
    # Training processes per job: more than 1 launches torchrun (DDP, one process per GPU; gloo on CPU).
    training_processes: int = 1
    # Dequantised base weights reused by later jobs; `data_dir`/fine_tuning/cache when unset.
    training_cache_dir: Path | None = None
    # Embeddings: concurrent requests to one embedding model are embedded together, up to this
    # many texts per batch, waiting at most this long for others to join.
    embeddings_max_batch: int = 64
    embeddings_batch_wait_ms: float = 2.0
    # Moderation (POST /v1/moderations, guardrails): a YAML file saying which providers score
    # which category (docs/moderation.md); unset: the shipped classifier head, plus rule-based PII.
    moderation_config: Path | None = None
    # Document libraries: largest document ingested (bytes) and most pages; larger ones end in
    # `error` with that reason (uploads beyond max_upload_bytes get 413 at once).
    library_max_document_bytes: int = 100 * 1024 * 1024
    library_max_pages: int = 2000
    # Agents and conversations: one response's bounded loop (model steps, generated tokens over
    # all steps, wall time); a response that reaches a bound ends with an error naming it.
    agent_max_steps: int = 8
    agent_max_tokens: int = 4096
    agent_max_seconds: float = 300.0
    # Database connectors' defaults (a connection may set lower): most rows returned, statement
    # time limit.
    database_row_cap: int = 200
    database_timeout_s: float = 5.0
    # MCP connectors: time allowed to connect to a server and for one tool call.
    mcp_timeout_s: float = 30.0
    # Documents ingested at the same time by this gateway (parsing and OCR run in worker processes).
    ingestion_workers: int = 1
    # Whether this gateway ingests documents (several replicas may: each document is claimed by one).
    ingestion_runner: bool = True
    # OCR of scanned pages and images (ingestion and POST /v1/ocr): "tesseract" (local, Debian's
    # tesseract-ocr) or "openai" (a vision model behind an OpenAI-compatible server, e.g. vLLM).
    ocr_engine: Literal["tesseract", "openai"] = "tesseract"
    # Tesseract languages (installed traineddata), joined with "+" (French first: with English first it
    # drops French accents).
    ocr_languages: str = "fra+eng"
    # Engine openai: the server's base URL (/v1 included), its model, and the variable holding its key.
    ocr_base_url: str | None = None
    ocr_model: str | None = None
    ocr_api_key_env: str | None = None
    log_level: str = "info"
    # Log lines: "json" (one object per line, with the request id) or "text".
    log_format: str = "json"
    # Serve /metrics without authentication (Prometheus on a private network); off: it needs a key.
    metrics_public: bool = False
    # OTLP/HTTP collector (http://host:4318): when set, requests are traced there; nothing is sent otherwise.
    otel_endpoint: str | None = None
    otel_service_name: str = "plateforme"

    def resolved_database_url(self) -> str:
        from plateforme.storage.database import default_url

        return self.database_url or default_url(self.data_dir)

    def resolved_blob_store(self) -> str:
        return self.blob_store or str(self.data_dir / "blobs")
