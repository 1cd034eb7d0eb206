"""API-key check applied to every route."""

import hmac

from fastapi import Request

from plateforme.api.errors import APIError


async def require_api_key(request: Request) -> None:
    expected = request.app.state.settings.api_key
    if expected is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    ok = scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.get_secret_value().encode()
    )
    if not ok:
        raise APIError(401, "Missing or invalid API key: send `Authorization: Bearer <key>`.",
                       type="unauthorized", headers={"WWW-Authenticate": "Bearer"})
