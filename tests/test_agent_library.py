"""An agent answering from a library, with references, through the mistralai SDK's beta.libraries,
beta.agents and beta.conversations against the session's shared server (the default model
SmolLM2-135M and the default embedding model).

The tiny model, once it has read a tool result with tool_choice "auto", tends to call the tool
again and again until the loop's bound. So the response is made in two cheap, deterministic
steps: the agent's search requires confirmation and its first step is forced ("any"): start
(non-streamed) ends with the pending document_library call; append_stream (streamed) allows it
with tool_choice "none": the search runs, the model answers from what it read, its deltas
streaming the tool_reference chunks in place.

The tiny model's prose and query are not asserted; the structure is: the search ran (a
tool.execution entry named document_library whose hits are what POST /v1/libraries/search gives
for the same query), the answer's content has tool_reference chunks, each naming a passage that
search retrieved, whose link downloads that very document without a key; the history validates
against Mistral's spec. A library the key cannot read is a 400 naming the field. The tool's own
logic (numbering, failures, another workspace's library) is in test_document_library_tool.py.
"""

import json
import time

import httpx
import pytest
from mistralai.client import Mistral
from server_process import DEFAULT_MODEL
from spec_schema import validate_response

POLICY = (b"# Leave policy\n\nEvery employee of Valmery gets 27 days of paid leave a year. Leave is booked in the "
          b"HR portal at least two weeks ahead.\n")
EXPENSES = (b"# Expenses\n\nTravel expenses are refunded within ten days when the receipts are attached to the "
            b"claim.\n")
QUESTION = "How many days of paid leave do employees get?"
# The forced call's JSON and its query (at most 150 characters) fit in 200 tokens.
FORCED = {"tool_choice": "any", "temperature": 0, "max_tokens": 200}
ANSWER = {"tool_choice": "none", "temperature": 0, "max_tokens": 40}


@pytest.fixture(scope="module")
def handbook(server):
    client = Mistral(api_key="no-auth", server_url=server.url, timeout_ms=600_000)
    http = httpx.Client(base_url=server.url, timeout=600)
    library = client.beta.libraries.create(name="Agent handbook", description="HR policies of Valmery")
    files = {}
    for name, data in (("leave-policy.md", POLICY), ("expenses.md", EXPENSES)):
        doc = client.beta.libraries.documents.upload(library_id=library.id, file={"file_name": name, "content": data})
        files[doc.id] = (name, data)
    deadline = time.monotonic() + 120
    for document_id in files:
        while (status := client.beta.libraries.documents.status(library_id=library.id, document_id=document_id)
               .process_status) in ("todo", "in_progress") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == "done", status
    yield client, http, library.id, files
    client.beta.libraries.delete(library_id=library.id)
    http.close()


def check_search(http: httpx.Client, search: dict, library_id: str, files: dict) -> dict[str, str]:
    """The tool.execution entry of a search: its hits are the library search's for the same query.
    Returns {reference title: document id} of what it retrieved."""
    assert search["type"] == "tool.execution" and search["name"] == "document_library", search
    info, query = search["info"], json.loads(search["arguments"])["query"].strip()
    assert info["query"] == query and info["results"], info
    found = http.post("/v1/libraries/search", json={"query": query, "library_ids": [library_id],
                                                    "top_k": 4}).json()["data"]
    assert [(r["document_id"], r["page"]) for r in info["results"]] == [(f["document_id"], f["page"]) for f in found]
    retrieved = {}
    for result in info["results"]:
        assert result["library_id"] == library_id and result["document_name"] == files[result["document_id"]][0]
        retrieved[f"{result['document_name']}, p. {result['page']}"] = result["document_id"]
    return retrieved


def check_references(http: httpx.Client, answer: dict, retrieved: dict[str, str], files: dict) -> None:
    """The answer cites only what was retrieved, and each reference's link is the document."""
    assert answer["type"] == "message.output" and isinstance(answer["content"], list), answer
    references = [c for c in answer["content"] if c["type"] == "tool_reference"]
    assert references, answer["content"]
    for reference in references:
        assert reference["tool"] == "document_library" and reference["title"] in retrieved, reference
        document_id = retrieved[reference["title"]]
        linked = httpx.get(http.base_url.join(reference["url"]), timeout=60)  # no API key: the link is signed
        assert linked.status_code == 200 and linked.content == files[document_id][1]
        assert reference["description"][:30] in " ".join(files[document_id][1].decode().split())


def test_an_agent_answers_from_a_library_with_references(handbook):
    client, http, library_id, files = handbook
    tool = {"type": "document_library", "library_ids": [library_id],
            "tool_configuration": {"requires_confirmation": ["document_library"]}}
    agent = client.beta.agents.create(model=DEFAULT_MODEL, name="handbook assistant", tools=[tool],
                                      instructions="Answer from the HR handbook, briefly.", completion_args=FORCED)
    try:
        started = client.beta.conversations.start(agent_id=agent.id, inputs=QUESTION)
        [call] = [o for o in started.outputs if o.type == "function.call"]
        assert call.name == "document_library" and call.confirmation_status == "pending"

        events = list(client.beta.conversations.append_stream(
            conversation_id=started.conversation_id, completion_args=ANSWER,
            tool_confirmations=[{"tool_call_id": call.tool_call_id, "confirmation": "allow"}]))
        types = [e.event for e in events]
        assert types[0] == "conversation.response.started" and types[-1] == "conversation.response.done", types
        assert [e.data.name for e in events if e.event.startswith("tool.execution")] == ["document_library"] * 2
        assert "message.output.delta" in types[types.index("tool.execution.done"):]

        history = http.get(f"/v1/conversations/{started.conversation_id}/history")
        validate_response("/v1/conversations/{conversation_id}/history", "get", 200, history.json())
        entries = history.json()["entries"]
        assert [e["type"] for e in entries] == ["message.input", "function.call", "tool.execution", "message.output"]
        retrieved = check_search(http, entries[2], library_id, files)
        check_references(http, entries[3], retrieved, files)
        # Streamed, the answer's deltas add up to those chunks, tool_reference chunks included.
        streamed: list[dict] = []
        for event in events:
            if event.event != "message.output.delta" or event.data.id != entries[3]["id"]:
                continue
            piece, index = event.data.content, event.data.content_index
            if index == len(streamed):
                streamed.append({"type": "text", "text": piece} if isinstance(piece, str)
                                else piece.model_dump(mode="json", by_alias=True, exclude_none=True))
            else:
                assert index == len(streamed) - 1 and isinstance(piece, str)
                streamed[-1]["text"] += piece
        assert streamed == entries[3]["content"]
        # The SDK reads the same answer.
        read = client.beta.conversations.get_history(conversation_id=started.conversation_id).entries[-1]
        assert [c.type for c in read.content] == [c["type"] for c in entries[3]["content"]]
    finally:
        client.beta.agents.delete(agent_id=agent.id)


def test_a_library_the_key_cannot_read_is_a_400_naming_it(handbook):
    _, http, library_id, _ = handbook
    unknown = "3f1c1a9e-0000-4000-8000-000000000000"
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
             {"type": "document_library", "library_ids": [library_id, unknown]}]
    answer = http.post("/v1/conversations", json={"model": DEFAULT_MODEL, "inputs": QUESTION, "tools": tools})
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["object"] == "error" and error["param"] == "tools.1.library_ids" and unknown in error["message"]
