"""Log formats: one JSON object per line (default), or classic text; both carry the request id.

`configure_logging` installs one stderr handler on the root logger; uvicorn's loggers propagate
to it (serve runs uvicorn with `log_config=None`), so every line has the same format.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from plateforme.observability.context import current_request_id

LOG_FORMATS = ("json", "text")
# Attributes every LogRecord has: anything else on a record came from `extra=` and is logged.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "color_message", "request_id"}


def _request_id(record: logging.LogRecord) -> str | None:
    return getattr(record, "request_id", None) or current_request_id()


class JSONFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", "request_id", ...extra fields, "exc"}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
                  .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _request_id(record)
        if request_id:
            out["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [request id]`."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = _request_id(record)
        return f"{line} [{request_id}]" if request_id else line


def configure_logging(log_format: str = "json", level: str = "info") -> None:
    """Route every logger (plateforme's, uvicorn's, libraries') to stderr in `log_format`."""
    if log_format not in LOG_FORMATS:
        raise SystemExit(f"plateforme: PLATEFORME_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, "
                         f"not {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)
