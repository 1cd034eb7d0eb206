"""Files API with real keys: the mistralai SDK, spec shapes, workspace isolation, signed links, limits."""

import io
import time
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import collapse_rfc2231_value
from pathlib import Path

import httpx
import pytest
from mistralai.client import Mistral
from sqlalchemy import update

from plateforme.storage.database import default_url, make_engine
from plateforme.storage.tables import StoredFile
from conftest import database_env
from server_process import default_model_entry
from spec_schema import validate_response

JSONL = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n' * 3


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tenants(start_server, request):
    """A server with two workspaces, each with a member key, plus the bootstrap admin key."""
    server = start_server(models=[default_model_entry(parallel=1, max_queue=2)],
                          env={"PLATEFORME_MAX_UPLOAD_BYTES": "100000", "PLATEFORME_MAX_REQUEST_BYTES": "50000",
                               "PLATEFORME_NO_AUTH": "false",
                               **database_env(request, request.param)})
    admin_key = server.api_key  # the bootstrap admin's key
    keys = {}
    for team in ("alpha", "beta"):
        server.admin("workspaces", "create", team)
        user = server.admin("users", "create", "--workspace", team, "--email", f"dev@{team}.example")
        keys[team] = server.admin("keys", "create", "--user", user)
    return server, admin_key, keys


def _client(server, key) -> Mistral:
    return Mistral(api_key=key, server_url=server.url)


def test_files_round_trip_with_the_sdk(tenants):
    server, _, keys = tenants
    client = _client(server, keys["alpha"])
    up = client.files.upload(file={"file_name": "train.jsonl", "content": JSONL}, purpose="fine-tune")
    assert (up.filename, up.size_bytes, up.num_lines, up.purpose, up.source) == ("train.jsonl", len(JSONL), 3,
                                                                            "fine-tune", "upload")
    listed = client.files.list(purpose="fine-tune", search="train")
    assert [f.id for f in listed.data] == [up.id] and listed.total == 1
    assert client.files.retrieve(file_id=up.id).signature == up.signature
    assert client.files.download(file_id=up.id).read() == JSONL
    url = client.files.get_signed_url(file_id=up.id, expiry=1).url
    assert httpx.get(url).content == JSONL  # no key needed
    deleted = client.files.delete(file_id=up.id)
    assert deleted.deleted and deleted.id == up.id
    assert client.files.list().total == 0
    assert httpx.get(url).status_code == 404


def test_every_purpose_of_the_spec_uploads_lists_and_filters(tenants):
    """FilePurpose (fine-tune, batch, ocr), `audio` (FileSchema documents it), `agentic_safety`
    (the mistralai SDK's): each is stored, filtered on, and given the spec's sample_type."""
    server, _, keys = tenants
    client = _client(server, keys["beta"])
    expected = {"fine-tune": "instruct", "batch": "batch_request", "ocr": "instruct", "audio": "instruct",
                "agentic_safety": "instruct"}
    ids = {}
    for purpose, sample_type in expected.items():
        up = client.files.upload(file={"file_name": f"{purpose}.bin", "content": b"x\n"}, purpose=purpose)
        assert (up.purpose, up.sample_type) == (purpose, sample_type)
        ids[purpose] = up.id
    try:
        for purpose, file_id in ids.items():
            assert [f.id for f in client.files.list(purpose=purpose).data] == [file_id]
        batch_inputs = client.files.list(sample_type=["batch_request"]).data
        assert [f.id for f in batch_inputs] == [ids["batch"]]
    finally:
        for file_id in ids.values():
            client.files.delete(file_id=file_id)


def test_file_responses_follow_the_spec(tenants):
    server, _, keys = tenants
    h = {"Authorization": f"Bearer {keys['alpha']}"}
    r = httpx.post(f"{server.url}/v1/files", headers=h, files={"file": ("a.jsonl", JSONL)}, data={"purpose": "batch"})
    validate_response("/v1/files", "post", r.status_code, r.json())
    file_id = r.json()["id"]
    for path, method in [("/v1/files", "get"), ("/v1/files/{file_id}", "get"), ("/v1/files/{file_id}/url", "get"),
                         ("/v1/files/{file_id}", "delete")]:
        r = httpx.request(method.upper(), server.url + path.format(file_id=file_id), headers=h)
        validate_response(path, method, r.status_code, r.json())


def test_one_workspace_never_sees_anothers_files(tenants):
    server, admin_key, keys = tenants
    alpha, beta = _client(server, keys["alpha"]), _client(server, keys["beta"])
    mine = alpha.files.upload(file={"file_name": "secret.jsonl", "content": JSONL})
    h = {"Authorization": f"Bearer {keys['beta']}"}
    assert all(f.id != mine.id for f in beta.files.list().data)
    for method, path in [("GET", ""), ("GET", "/content"), ("GET", "/url"), ("DELETE", "")]:
        r = httpx.request(method, f"{server.url}/v1/files/{mine.id}{path}", headers=h)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["object"] == "error"
    admin = _client(server, admin_key)  # an admin acts within its own workspace, not others'
    assert all(f.id != mine.id for f in admin.files.list().data)
    assert alpha.files.retrieve(file_id=mine.id).id == mine.id


def test_signed_links_cannot_be_forged(tenants):
    server, _, keys = tenants
    client = _client(server, keys["alpha"])
    up = client.files.upload(file={"file_name": "x.jsonl", "content": JSONL})
    url = httpx.URL(client.files.get_signed_url(file_id=up.id).url)
    params = dict(url.params)
    longer = url.copy_with(params={**params, "expires": str(int(params["expires"]) + 3600)})
    assert httpx.get(longer).status_code == 403
    other = url.copy_with(params={**params, "signature": "0" * 64})
    assert httpx.get(other).status_code == 403
    assert httpx.get(url).status_code == 200


def test_filenames_are_sanitised_and_size_is_limited(tenants):
    server, _, keys = tenants
    client = _client(server, keys["beta"])
    for name, stored in [("../../etc/passwd.jsonl", "passwd.jsonl"), ("..\\..\\pa:ss|wd.jsonl", "pa_ss_wd.jsonl"),
                         ("...", "upload")]:
        assert client.files.upload(file={"file_name": name, "content": JSONL}).filename == stored
    h = {"Authorization": f"Bearer {keys['beta']}"}
    r = httpx.post(f"{server.url}/v1/files", headers=h, files={"file": ("big.jsonl", io.BytesIO(b"x" * 200_000))})
    assert r.status_code == 413 and r.json()["object"] == "error"
    r = httpx.post(f"{server.url}/v1/files", headers=h, files={"file": ("a.jsonl", JSONL)}, data={"purpose": "nope"})
    assert r.status_code == 422


def test_missing_revoked_and_wrong_keys_get_401(tenants):
    server, _, keys = tenants
    assert httpx.get(f"{server.url}/v1/files").status_code == 401
    assert httpx.get(f"{server.url}/v1/models", headers={"Authorization": "Bearer plat-abcdefgh-nope"}).status_code == 401
    user = server.admin("users", "create", "--workspace", "alpha", "--email", "temp@alpha.example")
    key = server.admin("keys", "create", "--user", user)
    h = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{server.url}/v1/files", headers=h).status_code == 200
    server.admin("keys", "revoke", key.rsplit("-", 1)[0] if key.count("-") == 2 else key[:13])
    time.sleep(2.5)  # key lookups are cached for 2 s
    assert httpx.get(f"{server.url}/v1/files", headers=h).status_code == 401
    audit = server.admin("audit", "--limit", "50")
    assert "key.revoke" in audit and "file.upload" in audit


def test_oversized_bodies_get_413_and_the_server_keeps_serving(tenants):
    server, _, keys = tenants
    h = {"Authorization": f"Bearer {keys['alpha']}", "Content-Type": "application/json"}
    big = b'{"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "' + b"x" * 60_000 + b'"}]}'
    r = httpx.post(f"{server.url}/v1/chat/completions", headers=h, content=big)
    assert r.status_code == 413 and r.json()["type"] == "request_too_large"
    chunked = httpx.post(f"{server.url}/v1/chat/completions", headers=h,
                         content=(big[i:i + 8192] for i in range(0, len(big), 8192)))  # no Content-Length
    assert chunked.status_code == 413
    ok = httpx.post(f"{server.url}/v1/chat/completions", headers=h, timeout=60, json={
        "model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    assert ok.status_code == 200
    assert keys["alpha"] not in server.log() and keys["beta"] not in server.log()  # secrets never logged


def _database_url(server) -> str:
    return server.env.get("PLATEFORME_DATABASE_URL") or default_url(Path(server.env["PLATEFORME_DATA_DIR"]))


def test_signed_links_stop_when_the_file_expires_or_is_deleted(tenants):
    server, _, keys = tenants
    client = _client(server, keys["alpha"])
    h = {"Authorization": f"Bearer {keys['alpha']}"}
    r = httpx.post(f"{server.url}/v1/files", headers=h, files={"file": ("soon.jsonl", JSONL)}, data={"expiry": "1"})
    expiring = r.json()["id"]
    url = client.files.get_signed_url(file_id=expiring, expiry=24).url  # the link outlives the file
    assert httpx.get(url).content == JSONL
    engine = make_engine(_database_url(server))  # an hour is long: the file's hour is over now
    with engine.begin() as conn:
        conn.execute(update(StoredFile).where(StoredFile.id == expiring)
                     .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    engine.dispose()
    assert httpx.get(f"{server.url}/v1/files/{expiring}/content", headers=h).status_code == 404
    deleted = client.files.upload(file={"file_name": "gone.jsonl", "content": JSONL}).id
    deleted_url = client.files.get_signed_url(file_id=deleted).url
    client.files.delete(file_id=deleted)
    for link in (url, deleted_url):
        r = httpx.get(link)
        assert r.status_code == 404, r.text
        assert r.json()["object"] == "error" and r.json()["type"] == "not_found" and JSONL not in r.content


def test_a_signature_of_any_characters_gets_403(tenants):
    server, _, keys = tenants
    client = _client(server, keys["alpha"])
    up = client.files.upload(file={"file_name": "x.jsonl", "content": JSONL})
    url = httpx.URL(client.files.get_signed_url(file_id=up.id).url)
    unsigned = str(url.copy_remove_param("signature"))
    for forged in [url.copy_merge_params({"signature": s}) for s in ("é" * 64, "署名", "\u202e" + "0" * 63)] + [
            unsigned + "&signature=%ff%fe" + "0" * 60]:  # not even UTF-8
        r = httpx.get(forged)
        assert r.status_code == 403, (forged, r.text)
        assert r.json()["object"] == "error" and r.json()["type"] == "forbidden"
    assert httpx.get(url).status_code == 200


NAMES = ["学習データ.jsonl", "🚀 launch.jsonl", "invoice\u202egnp.jsonl", "a\u2028b.jsonl", "Café.jsonl"]


@pytest.mark.parametrize("name", NAMES)
def test_any_filename_downloads_with_its_name(tenants, name):
    server, _, keys = tenants
    client = _client(server, keys["beta"])
    content = name.encode() + b"\n" + JSONL
    up = client.files.upload(file={"file_name": name, "content": content})
    assert up.filename == name
    assert client.files.download(file_id=up.id).read() == content  # the mistralai SDK
    for link, h in [(f"{server.url}/v1/files/{up.id}/content", {"Authorization": f"Bearer {keys['beta']}"}),
                    (client.files.get_signed_url(file_id=up.id).url, {})]:
        r = httpx.get(link, headers=h)
        assert r.status_code == 200, r.text
        assert r.content == content
        header = r.headers["content-disposition"]
        fallback, exact = _filenames(header)
        assert exact == name
        assert fallback.isascii() and fallback.isprintable() and '"' not in fallback


def _filenames(header: str) -> tuple[str, str]:
    """(filename, filename*) of a Content-Disposition header, read by the standard library's RFC 2231 parser."""
    parsed = Message()
    parsed["Content-Disposition"] = header
    params = [v for k, v in parsed.get_params(header="Content-Disposition") if k == "filename"]
    extended = [v for v in params if isinstance(v, tuple)]
    assert extended, f"no filename* in {header!r}"
    return next(v for v in params if isinstance(v, str)), collapse_rfc2231_value(extended[0])
