"""Observability: Prometheus metrics, request ids, structured logs, optional OpenTelemetry tracing.

`install.install_observability(app)` wires it all; routes report tokens and time to first token
with `observe_tokens` / `observe_ttft` (this package imports nothing from `plateforme.api`).
"""

from plateforme.observability.context import current_request_id
from plateforme.observability.metrics import observe_tokens, observe_ttft

__all__ = ["current_request_id", "observe_tokens", "observe_ttft"]
