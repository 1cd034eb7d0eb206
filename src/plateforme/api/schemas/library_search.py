"""Shapes of POST /v1/libraries/search (plateforme's own: Mistral has no public search route).
A hit maps onto Mistral's tool_reference / reference chunks: document, page and offsets into the
document's text_content (text_content[start:end] == text)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plateforme.retrieval.search import MAX_QUERY_CHARS, MAX_TOP_K


class LibrarySearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    library_ids: list[str] | None = Field(None, min_length=1, max_length=1000,
                                          description="libraries to search; all the key can read when left out")
    top_k: int = Field(5, ge=1, le=MAX_TOP_K)
    filters: dict[str, Any] | None = Field(None, description='on document attributes: {"lang": "fr"}, '
                                                              'a list for any of several values')
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"

    @field_validator("query")
    @classmethod
    def _not_blank(cls, query: str) -> str:
        if not query.strip():
            raise ValueError("the query is blank: give the text to search for")
        return query


class LibrarySearchHit(BaseModel):
    document_id: str
    document_name: str
    library_id: str
    page: int
    start: int
    end: int
    text: str
    score: float


class LibrarySearchResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[LibrarySearchHit]
