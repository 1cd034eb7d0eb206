"""Every error answered in Mistral's shape: {object, message, type, param, code} (+ detail on 422)."""

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from plateforme.agents.errors import AgentsError
from plateforme.chat.errors import ContextLengthExceeded, InvalidChatRequest
from plateforme.engines.errors import EngineRejected, EngineUnavailable, EngineUnsupported
from plateforme.fine_tuning.errors import FineTuningError
from plateforme.models.registry import UnknownModel
from plateforme.tenancy.errors import AccountError
from plateforme.pipeline.guards import RequestRefused
from plateforme.usage.limits import RateLimited

log = logging.getLogger("plateforme.api")


class APIError(Exception):
    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 param: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param = status, message, type, param
        self.headers = headers or {}


def error_body(status: int, message: str, type: str, param: str | None = None,
               detail: list | None = None) -> dict:
    body = {"object": "error", "message": message, "type": type, "param": param, "code": str(status)}
    if detail is not None:
        body["detail"] = detail
    return body


def error_response(status: int, message: str, type: str, param: str | None = None,
                   detail: list | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, type, param, detail), status_code=status, headers=headers)


def _loc(err: dict) -> str:
    return ".".join(str(part) for part in err.get("loc", ()) if part != "body")


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    detail = jsonable_encoder([{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in errors])
    if any(e["type"] == "json_invalid" for e in errors):
        return error_response(400, "Request body is not valid JSON: " + errors[0]["msg"],
                              "invalid_request_error", detail=detail)
    summary = "; ".join(f"{_loc(e) or 'body'}: {e['msg']}" for e in errors[:5])
    first = _loc(errors[0]) if errors else None
    return error_response(422, summary, "invalid_request_error", param=first or None, detail=detail)


async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    kind = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request_error")
    return error_response(exc.status_code, str(exc.detail), kind, headers=getattr(exc, "headers", None))


async def _api(_: Request, exc: APIError) -> JSONResponse:
    return error_response(exc.status, exc.message, exc.type, exc.param, headers=exc.headers)


async def _unknown_model(_: Request, exc: UnknownModel) -> JSONResponse:
    return error_response(404, str(exc), "invalid_model", param="model")


async def _too_long(_: Request, exc: ContextLengthExceeded) -> JSONResponse:
    return error_response(400, str(exc), "context_length_exceeded", param=exc.param)


async def _invalid(_: Request, exc: InvalidChatRequest) -> JSONResponse:
    return error_response(400, str(exc), "invalid_request_error", param=exc.param)


async def _rejected(_: Request, exc: EngineRejected) -> JSONResponse:
    return error_response(400, f"the model engine rejected the request: {exc}", "invalid_request_error")


async def _unsupported(_: Request, exc: EngineUnsupported) -> JSONResponse:
    return error_response(400, str(exc), "invalid_request_error", param=exc.param)


async def _unavailable(_: Request, exc: EngineUnavailable) -> JSONResponse:
    return error_response(503, str(exc), "service_unavailable",
                          headers={"Retry-After": str(exc.retry_after_s)})


async def _rate_limited(_: Request, exc: RateLimited) -> JSONResponse:
    return error_response(429, f"Rate limit: {exc}. Retry after {exc.retry_after_s} s.", "rate_limited",
                          headers={"Retry-After": str(exc.retry_after_s)})


async def _refused(_: Request, exc: RequestRefused) -> JSONResponse:
    body = error_body(403, f"Request blocked: {exc}.", "forbidden")
    if exc.report:  # what the guardrails checked and their scores, as chat completions echo them
        body["guardrails"] = exc.report
    return JSONResponse(jsonable_encoder(body), status_code=403)


async def _account(_: Request, exc: AccountError) -> JSONResponse:
    kind = {404: "not_found", 409: "conflict"}.get(exc.status, "invalid_request_error")
    return error_response(exc.status, str(exc), kind)


async def _fine_tuning(_: Request, exc: FineTuningError) -> JSONResponse:
    kind = {404: "not_found", 409: "conflict", 503: "service_unavailable"}.get(exc.status, "invalid_request_error")
    return error_response(exc.status, str(exc), kind, param=exc.param)


_AGENTS_KINDS = {404: "not_found", 409: "conflict", 502: "upstream_error", 503: "service_unavailable"}
# The status and type each error is answered with (the handlers below); the first match wins.
_STATUS = ((RequestRefused, 403, "forbidden"), (RateLimited, 429, "rate_limited"),
           (EngineUnavailable, 503, "service_unavailable"), (UnknownModel, 404, "invalid_model"),
           (ContextLengthExceeded, 400, "context_length_exceeded"), (InvalidChatRequest, 400, "invalid_request_error"),
           (EngineRejected, 400, "invalid_request_error"), (EngineUnsupported, 400, "invalid_request_error"))


def status_of(exc: BaseException) -> tuple[int, str]:
    """The status and error type this app answers `exc` with, for an error told after a stream has
    started (error events); (500, "internal_error") for an unexpected one."""
    if isinstance(exc, AgentsError):
        return exc.status, _AGENTS_KINDS.get(exc.status, "invalid_request_error")
    for kind, status, name in _STATUS:
        if isinstance(exc, kind):
            return status, name
    return 500, "internal_error"


async def _agents(_: Request, exc: AgentsError) -> JSONResponse:
    status, kind = status_of(exc)
    return error_response(status, str(exc), kind, param=exc.param)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal server error; see the server log", "internal_error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(APIError, _api)
    app.add_exception_handler(UnknownModel, _unknown_model)
    app.add_exception_handler(ContextLengthExceeded, _too_long)
    app.add_exception_handler(InvalidChatRequest, _invalid)
    app.add_exception_handler(EngineUnsupported, _unsupported)
    app.add_exception_handler(EngineRejected, _rejected)
    app.add_exception_handler(EngineUnavailable, _unavailable)
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_exception_handler(RequestRefused, _refused)
    app.add_exception_handler(AccountError, _account)
    app.add_exception_handler(FineTuningError, _fine_tuning)
    app.add_exception_handler(AgentsError, _agents)
    app.add_exception_handler(Exception, _unexpected)
