"""A route class whose invalid request bodies are answered 400 (not FastAPI's 422), in Mistral's shape."""

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from plateforme.api.errors import APIError


def _where(error: dict) -> str:
    return ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"


class BadRequestRoute(APIRoute):
    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request):
            try:
                return await handler(request)
            except RequestValidationError as exc:
                errors = exc.errors()
                summary = "; ".join(f"{_where(e)}: {e['msg']}" for e in errors[:5])
                first = _where(errors[0]) if errors else None
                raise APIError(400, f"Invalid request: {summary}. Fix the field(s) named and send it again.",
                               param=first if first != "body" else None) from None

        return route
