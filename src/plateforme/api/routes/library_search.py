"""POST /v1/libraries/search: passages of the libraries the key can read, best first, with their
document, page and character offsets (retrieval/search.py)."""

import uuid
from dataclasses import asdict

from fastapi import APIRouter, Request

from plateforme.api.errors import APIError
from plateforme.api.schemas.library_search import LibrarySearchHit, LibrarySearchRequest, LibrarySearchResponse
from plateforme.libraries.errors import LibraryError, LibraryNotFound
from plateforme.retrieval.errors import SearchError
from plateforme.retrieval.search import LibrarySearch

router = APIRouter()
_KINDS = {404: "not_found", 503: "service_unavailable"}


def _api_error(status: int, message: str, param: str | None) -> APIError:
    return APIError(status, message, type=_KINDS.get(status, "invalid_request_error"), param=param)


def _library_ids(given: list[str] | None) -> list[str] | None:
    """The ids once each, as UUIDs are written (any other string names no library: 404)."""
    if given is None:
        return None
    ids = []
    for library_id in given:
        try:
            ids.append(str(uuid.UUID(library_id)))
        except ValueError:
            raise _api_error(404, str(LibraryNotFound(library_id)), "library_ids") from None
    return list(dict.fromkeys(ids))


@router.post("/v1/libraries/search", response_model=LibrarySearchResponse)
async def search_libraries(request: Request, body: LibrarySearchRequest) -> LibrarySearchResponse:
    principal = request.state.principal
    await request.app.state.billing.admit(principal)
    search: LibrarySearch = request.app.state.library_search
    library_ids = _library_ids(body.library_ids)
    try:
        result = await search.search_with_usage(principal, body.query, library_ids, body.top_k, body.filters,
                                                body.mode)
    except SearchError as exc:
        raise _api_error(exc.status, str(exc), exc.param) from exc
    except LibraryError as exc:  # a named library this key cannot read (or that does not exist): 404
        raise _api_error(exc.status, str(exc), "library_ids") from exc
    for model, tokens in result.prompt_tokens.items():  # the query's embedding is metered like /v1/embeddings
        await request.app.state.billing.record(principal, model, "libraries.search", f"search-{uuid.uuid4().hex}",
                                               tokens, 0)
    return LibrarySearchResponse(data=[LibrarySearchHit(**asdict(hit)) for hit in result.hits])
