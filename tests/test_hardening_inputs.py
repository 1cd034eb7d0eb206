"""Inputs Python's JSON parser accepts but no server may answer with a 500: lone surrogates,
NaN/Infinity, deep nesting; and a 500 that still leaves the connection usable."""

import json
import sqlite3

import httpx
import pytest
from conftest import PARIS_MESSAGES

M = "smollm2-135m-instruct"
HI = '[{"role": "user", "content": "hi"}]'
TOOL = '{"type": "function", "function": {"name": "f", "parameters": %s}}'
ANSWERED = ('[{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [{"id": "abcdefghi", '
            '"function": {"name": "f", "arguments": %s}}]}, {"role": "tool", "tool_call_id": "abcdefghi", '
            '"content": %s}]')


def _chat(**fields: str) -> bytes:
    """A chat request whose fields are raw JSON text (so NaN and \\ud800 go through as written)."""
    fields = {"model": json.dumps(M), "messages": HI, "max_tokens": "2", **fields}
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}").encode()


def _schema_format(schema: str) -> str:
    return '{"type": "json_schema", "json_schema": {"name": "x", "schema": %s}}' % schema


def _post(http, raw: bytes, path: str = "/v1/chat/completions") -> httpx.Response:
    return http.post(path, content=raw, headers={"Content-Type": "application/json"})


def _refused(r: httpx.Response, param: str, *fragments: str) -> dict:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["object"] == "error" and body["code"] == "400" and body["type"] == "invalid_request_error"
    assert body["param"] == param, body
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    return body


SURROGATES = [
    (_chat(messages='[{"role": "user", "content": "hi \\ud800"}]'), "messages.0.content"),
    (_chat(messages='[{"role": "user", "content": [{"type": "text", "text": "\\udfff x"}]}]'),
     "messages.0.content.0.text"),
    (_chat(stop='["\\ud800"]'), "stop.0"),
    (_chat(stop='"end\\udbff"'), "stop"),
    (_chat(model='"smollm2\\ud800"'), "model"),
    (_chat(tools="[" + TOOL % '{"type": "object", "properties": {"\\ud800": {"type": "string"}}}' + "]"),
     "tools.0.function.parameters.properties"),
    (_chat(tools="[" + TOOL % '{"type": "object", "description": "\\ud800"}' + "]"),
     "tools.0.function.parameters.description"),
    (_chat(messages=ANSWERED % ('"{\\"a\\": \\"\\ud800\\"}"', '"ok"')), "messages.1.tool_calls.0.function.arguments"),
    (_chat(messages=ANSWERED % ('{"a": "\\ud800"}', '"ok"')), "messages.1.tool_calls.0.function.arguments.a"),
    (_chat(messages=ANSWERED % ("{}", '"result \\udc00"')), "messages.2.content"),
    (_chat(metadata='{"k": "\\ud800"}'), "metadata.k"),
]


@pytest.mark.parametrize("raw, param", SURROGATES, ids=[param for _, param in SURROGATES])
def test_lone_surrogate_is_refused_naming_the_field(http, raw, param):
    _refused(_post(http, raw), param, "lone UTF-16 surrogate")


def test_only_lone_surrogates_are_refused(http):
    # Raw surrogate bytes are not valid UTF-8, but Python's parser reads them as a lone surrogate.
    raw = b'{"model": "%s", "max_tokens": 2, "messages": [{"role": "user", "content": "hi \xed\xa0\x80"}]}' % M.encode()
    _refused(_post(http, raw), "messages.0.content", "lone UTF-16 surrogate")
    # A surrogate pair (an emoji), bidi controls, NUL and CJK text are text like any other.
    content = '"caf\\u00e9 \\ud83d\\ude00 \\u202egnp.exe \\u0000 \u4f60\u597d"'
    r = _post(http, _chat(messages='[{"role": "user", "content": %s}]' % content, stop='["\\ud83d\\ude00"]'))
    assert r.status_code == 200, r.text


def test_fim_prompt_with_lone_surrogate_is_refused(http):
    raw = b'{"model": "%s", "prompt": "def f(\\ud800", "suffix": "x"}' % M.encode()
    _refused(_post(http, raw, "/v1/fim/completions"), "prompt", "lone UTF-16 surrogate")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400", "-1E+999"])
@pytest.mark.parametrize("where, field, param", [
    ("tools", lambda t: "[" + TOOL % ('{"type": "object", "properties": {"a": {"type": "integer", "minimum": %s}}}'
                                      % t) + "]", "tools.0.function.parameters.properties.a.minimum"),
    ("schema", lambda t: _schema_format('{"type": "object", "properties": {"a": {"type": "integer", '
                                        '"default": %s}}}' % t), "response_format.json_schema.schema.properties.a.default"),
    ("enum", lambda t: _schema_format('{"enum": [1, %s]}' % t), "response_format.json_schema.schema.enum.1"),
    ("arguments", lambda t: ANSWERED % ('{"a": %s}' % t, '"ok"'), "messages.1.tool_calls.0.function.arguments.a"),
    ("temperature", lambda t: t, "temperature"),
])
def test_non_finite_number_is_refused_naming_the_field(http, token, where, field, param):
    key = {"tools": "tools", "schema": "response_format", "enum": "response_format", "arguments": "messages",
           "temperature": "temperature"}[where]
    _refused(_post(http, _chat(**{key: field(token)})), param, token, "not a finite number")


def _nested_properties(levels: int) -> str:
    schema = '{"type": "string"}'
    for _ in range(levels):
        schema = '{"type": "object", "properties": {"a": %s}}' % schema
    return schema


def _nested_items(levels: int) -> str:
    return '{"type": "array", "items": ' * levels + '{"type": "string"}' + "}" * levels


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("make", [_nested_properties, _nested_items])
def test_schema_nested_hundreds_of_levels_is_refused(http, make, stream):
    for raw, param in [
        (_chat(response_format=_schema_format(make(300)), stream=json.dumps(stream)), "response_format.json_schema"),
        (_chat(tools="[" + TOOL % make(300) + "]", stream=json.dumps(stream)), "tools.0.function.parameters"),
    ]:
        r = _post(http, raw)
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["object"] == "error" and "nested deeper than 100 levels" in body["message"]
        assert body["param"].startswith(param), body


@pytest.mark.parametrize("stream", [False, True])
def test_schema_deeper_than_the_schema_limit_is_refused(http, stream):
    """70 levels of `items` pass the body limit (100) but not the schema limit (64)."""
    deep = _nested_items(70)
    r = _post(http, _chat(response_format=_schema_format(deep), stream=json.dumps(stream)))
    _refused(r, "response_format.json_schema.schema", "nested deeper than 64 levels", "at most 64")
    r = _post(http, _chat(tools="[" + TOOL % ('{"type": "object", "properties": {"a": %s}}' % deep) + "]",
                          stream=json.dumps(stream)))
    _refused(r, "tools.0.function.parameters", "nested deeper than 64 levels", "at most 64")
    if not stream:  # a deep schema within the limit is served
        r = _post(http, _chat(response_format=_schema_format(_nested_items(30)), max_tokens="4"))
        assert r.status_code == 200, r.text


def test_metadata_nested_hundreds_of_levels_is_refused(http):
    _refused(_post(http, _chat(metadata='{"a": ' + "[" * 500 + "]" * 500 + "}")), "metadata.a.0.0.0.0.0.0",
             "at most 100")
    # Deeper than Python's own parser can go: still a 400 in the error shape.
    r = _post(http, _chat(metadata='{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"))
    assert r.status_code == 400 and r.json()["object"] == "error", r.text
    # And the server still serves.
    r = http.post("/v1/chat/completions", json={"model": M, "messages": PARIS_MESSAGES, "max_tokens": 1})
    assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "length"


@pytest.fixture(scope="module")
def modelless_server(start_server):
    return start_server(models=[])


def _local_port(response: httpx.Response) -> int:
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


def test_connection_stays_usable_after_a_500(modelless_server):
    """A real internal fault (the database lost a table) gives a 500 in the error shape, and the
    client's pooled keep-alive connection serves the next request (no reset, no reconnection)."""
    db = sqlite3.connect(modelless_server.workdir / "data" / "plateforme.db")
    with httpx.Client(base_url=modelless_server.url, timeout=30) as client:
        assert client.get("/v1/files").status_code == 200
        db.execute("ALTER TABLE files RENAME TO files_gone")
        db.commit()
        try:
            failed = client.get("/v1/files")
            assert failed.status_code == 500, failed.text
            assert failed.json()["object"] == "error" and failed.json()["type"] == "internal_error"
            assert failed.headers.get("connection", "").lower() != "close"
            after = client.get("/health")
        finally:
            db.execute("ALTER TABLE files_gone RENAME TO files")
            db.commit()
            db.close()
        assert after.status_code == 200
        assert _local_port(after) == _local_port(failed)  # the same TCP connection
        assert client.get("/v1/files").status_code == 200
    assert "unhandled error" in modelless_server.log()
