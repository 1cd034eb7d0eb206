"""OpenTelemetry tracing, off by default: spans go nowhere unless PLATEFORME_OTEL_ENDPOINT is set.

When it is, each HTTP request becomes a span (FastAPI instrumentation) exported in batches over
OTLP/HTTP to `<endpoint>/v1/traces`. The packages are optional (`pip install 'plateforme[otel]'`)
and imported only then. The standard `OTEL_*` variables (batch delay, headers...) still apply.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from plateforme import __version__

log = logging.getLogger("plateforme.tracing")
INSTALL_HINT = "pip install 'plateforme[otel]'"


def traces_url(endpoint: str) -> str:
    """`http://collector:4318` -> `http://collector:4318/v1/traces`; a full traces URL is kept."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


def install_tracing(app: FastAPI, endpoint: str | None, service_name: str = "plateforme") -> None:
    if not endpoint:
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise SystemExit(f"plateforme: PLATEFORME_OTEL_ENDPOINT is set but OpenTelemetry is not installed "
                         f"({exc.name or exc}); install it with: {INSTALL_HINT}") from exc
    url = traces_url(endpoint)
    provider = TracerProvider(resource=Resource.create({"service.name": service_name,
                                                        "service.version": __version__}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    # No spans per ASGI send/receive message: a streamed answer would otherwise make one per token.
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="/metrics",
                                       exclude_spans=["receive", "send"])
    app.state.tracer_provider = provider  # its atexit hook flushes the last spans
    log.info("tracing: exporting spans to %s", url)
