"""Mistral's `document_library` tool: search the workspace's libraries, cite what was found.

A tool entry `{"type": "document_library", "library_ids": [...]}` gives the model one function,
`document_library(query)`, run by the platform: the libraries' passages that best answer the query
(retrieval/search.py, the search of POST /v1/libraries/search, with the caller's own access), shown
to the model as numbered excerpts it can cite as [n], and returned as Mistral tool_reference chunks
(document name and page, a signed link to the document, the excerpt) that the answer's citations
are made of (agent_tools/citations.py).

The libraries are checked when the toolset is resolved: each must be one the caller may read, else
a 400 naming `tools.N.library_ids` (a library of another workspace is answered as not found, as
everywhere). A search that fails when the model calls the tool (the library deleted meanwhile, its
embedding model not served) is a ToolOutcome with the reason: the conversation goes on.
"""

import asyncio
import time
import uuid
from collections import OrderedDict

from sqlalchemy import select

from plateforme.agent_tools.base import PlatformTool, ToolContext, ToolOutcome, ToolSpecError
from plateforme.agent_tools.citations import reference_key
from plateforme.agent_tools.configuration import configured
from plateforme.libraries.access import readable
from plateforme.libraries.document_links import document_link
from plateforme.libraries.errors import LibraryError
from plateforme.retrieval.errors import SearchError
from plateforme.retrieval.search import MAX_QUERY_CHARS, SearchHit
from plateforme.storage.library_tables import Library
from plateforme.tenancy.principal import Principal

TOOL = "document_library"
# Passages per search, and the characters of each the model reads: the default model has a
# 2048-token window, which the excerpts share with the instructions, the history and the answer.
TOP_K = 4
EXCERPT_CHARS = 700
# Responses whose citation numbers are remembered (a response's calls continue one numbering).
REMEMBERED_RESPONSES = 1024
# The longest query the model may write (the search itself takes up to MAX_QUERY_CHARS).
QUERY_CHARS = 150

PARAMETERS = {
    "type": "object",
    # Bounded, so a call the model is forced to make (constrained to this schema) always ends.
    "properties": {"query": {"type": "string", "maxLength": QUERY_CHARS}},
    "required": ["query"],
}


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The passage on one line, cut at a word boundary within `limit` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0]
    return (cut if len(cut) > limit // 2 else flat[:limit]) + " …"


class _Numbering:
    """The citation numbers of the passages one response's calls retrieved: a passage keeps its
    number, a new one takes the next, so [n] names one passage across the response (citations.py
    numbers the loop's collected references the same way). A response is told apart by its
    conversation and its deadline (one per response, ToolContext.deadline)."""

    def __init__(self, size: int = REMEMBERED_RESPONSES):
        self.size, self.responses = size, OrderedDict()

    def numbers(self, context: ToolContext, references: list[dict]) -> list[int]:
        key = (context.principal.workspace_id, context.conversation_id, context.deadline)
        seen = self.responses.pop(key, None) or {}
        self.responses[key] = seen
        while len(self.responses) > self.size:
            self.responses.popitem(last=False)
        return [seen.setdefault(reference_key(reference), len(seen) + 1) for reference in references]


class DocumentLibraryTools:
    def __init__(self, library_search, url_signer, billing=None):
        """`library_search`: retrieval.search.LibrarySearch; `url_signer`: files.signing.UrlSigner;
        `billing`: usage.billing.Billing, which meters each search's query embedding to the caller's
        workspace as POST /v1/libraries/search does (None: not metered)."""
        self.search, self.signer, self.billing = library_search, url_signer, billing
        self.numbering = _Numbering()

    async def tools(self, principal: Principal, spec: dict, param: str) -> list[PlatformTool]:
        library_ids = _library_ids(spec.get("library_ids"), f"{param}.library_ids")
        libraries = await asyncio.to_thread(self._readable, principal, library_ids)
        missing = [library_id for library_id in library_ids if library_id not in libraries]
        if missing:
            raise ToolSpecError(
                f"{param}.library_ids: no library with id {missing[0]!r} that this key can read: give the id of "
                "a library of this workspace (GET /v1/libraries lists them) or ask its owner to share it",
                f"{param}.library_ids")

        async def run(arguments: dict, context: ToolContext) -> ToolOutcome:
            return await self.run(library_ids, arguments, context)

        tool = PlatformTool(name=TOOL, description=_description(libraries), parameters=PARAMETERS,
                            entry_name=TOOL, run=run)
        return configured([tool], spec.get("tool_configuration"))

    def _readable(self, principal: Principal, library_ids: list[str]) -> dict[str, tuple[str, str | None]]:
        """{id: (name, description)} of the named libraries the principal may read."""
        statement = select(Library.id, Library.name, Library.description).where(
            Library.id.in_(library_ids), readable(principal))
        with self.search.db.session() as session:
            return {row[0]: (row[1], row[2]) for row in session.execute(statement)}

    async def run(self, library_ids: list[str], arguments: dict, context: ToolContext) -> ToolOutcome:
        query = arguments.get("query") if isinstance(arguments, dict) else None
        if not isinstance(query, str) or not query.strip():
            return _refused("call document_library with {\"query\": \"<what to look for>\"}: the query is missing "
                            "or empty", arguments)
        query = query.strip()[:MAX_QUERY_CHARS]
        remaining = context.deadline - time.monotonic()
        if remaining <= 0:
            return _refused("no time is left in this response to search the libraries", arguments, query)
        try:
            result = await asyncio.wait_for(
                self.search.search_with_usage(context.principal, query, library_ids, TOP_K), remaining)
        except TimeoutError:
            return _refused("the library search did not answer within this response's time limit", arguments, query)
        except (SearchError, LibraryError) as exc:
            return _refused(f"the library search failed: {exc}", arguments, query)
        await self._meter(context, result.prompt_tokens)
        return self.outcome(query, result.hits, context)

    async def _meter(self, context: ToolContext, prompt_tokens: dict[str, int]) -> None:
        """The query's embedding, per embedding model, in the caller's usage (route libraries.search)."""
        if self.billing is None:
            return
        for model, tokens in prompt_tokens.items():
            await self.billing.record(context.principal, model, "libraries.search", f"search-{uuid.uuid4().hex}",
                                      tokens, 0)

    def outcome(self, query: str, hits: list[SearchHit], context: ToolContext) -> ToolOutcome:
        info = {"query": query, "results": [
            {"document_id": hit.document_id, "library_id": hit.library_id, "document_name": hit.document_name,
             "page": hit.page, "score": hit.score} for hit in hits]}
        if not hits:
            return ToolOutcome(content=f"No passage of the libraries matches {query!r}.", info=info)
        references = [{"type": "tool_reference", "tool": TOOL, "title": f"{hit.document_name}, p. {hit.page}",
                       "url": document_link(self.signer, hit.document_id), "description": excerpt(hit.text)}
                      for hit in hits]
        numbers = self.numbering.numbers(context, references)
        lines = [f"[{n}] {ref['title']}: {ref['description']}" for n, ref in zip(numbers, references, strict=True)]
        content = ("Passages found (cite them by number, e.g. [1]):\n\n" + "\n\n".join(lines))
        return ToolOutcome(content=content, info=info, references=references)


def _library_ids(given, param: str) -> list[str]:
    """The ids once each, as UUIDs are written; ToolSpecError naming `param` for anything else."""
    if not isinstance(given, list) or not given:
        raise ToolSpecError(f"{param}: name at least one library id (GET /v1/libraries lists them)", param)
    ids = []
    for library_id in given:
        try:
            ids.append(str(uuid.UUID(str(library_id))))
        except ValueError:
            raise ToolSpecError(f"{param}: {library_id!r} is not a library id (a UUID, as GET /v1/libraries lists "
                                "them)", param) from None
    return list(dict.fromkeys(ids))


def _description(libraries: dict[str, tuple[str, str | None]]) -> str:
    named = "; ".join(f"{name} ({description.strip()})" if description and description.strip() else name
                      for name, description in libraries.values())
    return (f"Search the documents of these libraries: {named}. Returns numbered passages with their document "
            "and page; cite a passage you use by its number in square brackets, e.g. [1].")


def _refused(reason: str, arguments, query: str | None = None) -> ToolOutcome:
    info = {"query": query, "results": [], "error": reason}
    if query is None and isinstance(arguments, dict):
        info["arguments"] = arguments
    return ToolOutcome(content=f"Error: {reason}.", info=info, error=reason)
