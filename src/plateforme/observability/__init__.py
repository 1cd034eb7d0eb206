"""Observability: Prometheus metrics, request ids, structured logs, optional OpenTelemetry tracing.

`install.install_observability(app)` wires it all; the request pipeline reports tokens, time to
first token and how generations end (this package imports nothing from `plateforme.api`).
"""

from plateforme.observability.context import current_request_id
from plateforme.observability.metrics import observe_tokens

__all__ = ["current_request_id", "observe_tokens"]
