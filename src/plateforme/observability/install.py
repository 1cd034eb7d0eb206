"""Wire observability into an app: metrics, request ids and access logs, `/metrics`, tracing."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request, Response
from starlette.middleware import Middleware

from plateforme.api.auth import authenticate
from plateforme.observability.metrics import Metrics
from plateforme.observability.request_id import RequestObservability, RouteRecorder
from plateforme.observability.tracing import install_tracing


async def metrics_endpoint(request: Request) -> Response:
    body, content_type = request.app.state.metrics.render()
    return Response(body, media_type=content_type)


def install_observability(app: FastAPI) -> None:
    """Call once in create_app, after `app.state.settings/registry/pool` are set."""
    settings = app.state.settings
    metrics = Metrics(getattr(app.state, "pool", None), getattr(app.state, "registry", None))
    app.state.metrics = metrics
    # Authenticated like every route unless PLATEFORME_METRICS_PUBLIC (scrapers on a private network).
    dependencies = [] if getattr(settings, "metrics_public", False) else [Depends(authenticate)]
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False,
                      dependencies=dependencies)
    app.user_middleware.append(Middleware(RouteRecorder))  # last: innermost, whatever is added later
    install_tracing(app, getattr(settings, "otel_endpoint", None),
                    getattr(settings, "otel_service_name", "plateforme"))
    # Outermost, around Starlette's error middleware and whatever middleware is added after this
    # call, so every response (413 from a body limit, 500 from an unexpected error) has an id.
    # After install_tracing: its wrapper expects Starlette's own stack.
    build = app.build_middleware_stack

    def build_middleware_stack():
        return RequestObservability(build(), metrics)

    app.build_middleware_stack = build_middleware_stack
