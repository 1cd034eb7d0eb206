"""JSON mode and JSON-schema mode: every answer parses and validates, even from the 135M model."""

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import jsonschema
import pytest
from server_process import DEFAULT_MODEL

PERSON = {"type": "object", "additionalProperties": False, "required": ["name", "age"],
          "properties": {"name": {"type": "string", "maxLength": 40}, "age": {"type": "integer", "minimum": 0,
                                                                             "maximum": 130}}}
BOOK = {"type": "object", "required": ["title", "authors", "year"],
        "properties": {"title": {"type": "string", "maxLength": 60},
                       "authors": {"type": "array", "items": {"type": "string", "maxLength": 40},
                                   "minItems": 1, "maxItems": 3},
                       "year": {"type": "integer"}}}
CITY = {"type": "object", "required": ["city", "country", "population", "capital"],
        "properties": {"city": {"type": "string", "maxLength": 40}, "country": {"type": "string", "maxLength": 40},
                       "population": {"type": "integer", "minimum": 0}, "capital": {"type": "boolean"}}}
ORDER = {"type": "object", "required": ["status", "items"],
         "properties": {"status": {"enum": ["pending", "shipped", "delivered"]},
                        "items": {"type": "array", "maxItems": 4, "items": {
                            "type": "object", "required": ["sku", "qty"],
                            "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{3}$"},
                                           "qty": {"type": "integer", "minimum": 1, "maximum": 99}}}}}}
EVENT = {"type": "object", "required": ["title", "date", "attendees"],
         "properties": {"title": {"type": "string", "maxLength": 50}, "date": {"type": "string", "format": "date"},
                        "attendees": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}}

SCHEMA_CASES = [
    (PERSON, "Invent a person."), (PERSON, "Describe Ada Lovelace."), (BOOK, "Recommend a novel."),
    (BOOK, "Tell me about a cookbook."), (CITY, "Describe Lyon."), (CITY, "Tell me about Tokyo."),
    (ORDER, "Create an order for two products."), (ORDER, "An order that was shipped."),
    (EVENT, "Plan a team lunch."), (EVENT, "A conference in 2025."),
    (PERSON, "Who wrote Hamlet?"), (BOOK, "A book about the sea."),
]
JSON_MODE_PROMPTS = [
    "Give me a JSON object describing a cat.", "Return a JSON object with a list of three fruits.",
    "Answer in JSON: what is 2 + 2?", "A JSON object with the fields city and country for Paris.",
    "Describe a car as JSON.", "Return JSON with a greeting.", "JSON object listing two colours.",
    "Give the weather as a JSON object.",
]

CONCURRENT = 8  # requests in flight at once, fewer than the default model's 16 slots: none waits in a queue


def _schema_request(model: str, schema: dict, prompt: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0.7, "max_tokens": 400,
            "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema,
                                                                        "strict": True}}}


def _json_mode_request(model: str, prompt: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0.7,
            "response_format": {"type": "json_object"}}


@pytest.fixture(scope="module")
def answers(server) -> dict:
    """Every generation case's answer (or the error getting it), eight requests at a time: the server's
    slots decode them in one batch, faster on CPU than one after the other; each test checks its own."""
    requests = {("schema", i): _schema_request(DEFAULT_MODEL, schema, prompt)
                for i, (schema, prompt) in enumerate(SCHEMA_CASES)}
    requests |= {("json", i): _json_mode_request(DEFAULT_MODEL, prompt) for i, prompt in enumerate(JSON_MODE_PROMPTS)}
    with httpx.Client(base_url=server.url, timeout=300) as client, ThreadPoolExecutor(CONCURRENT) as pool:
        futures = {case: pool.submit(client.post, "/v1/chat/completions", json=body) for case, body in requests.items()}
        return {case: future.exception() or future.result() for case, future in futures.items()}


def _answer(answers: dict, case: tuple) -> httpx.Response:
    answer = answers[case]
    if isinstance(answer, Exception):
        raise answer
    return answer


@pytest.mark.parametrize("case", range(len(SCHEMA_CASES)), ids=[p for _, p in SCHEMA_CASES])
def test_json_schema_answers_validate(answers, case):
    r = _answer(answers, ("schema", case))
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "stop", choice
    jsonschema.validate(json.loads(choice["message"]["content"]), SCHEMA_CASES[case][0])


@pytest.mark.parametrize("case", range(len(JSON_MODE_PROMPTS)), ids=JSON_MODE_PROMPTS)
def test_json_mode_answers_parse(answers, case):
    r = _answer(answers, ("json", case))
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "stop", choice
    assert isinstance(json.loads(choice["message"]["content"]), dict)


def test_json_schema_stream(http, model):
    payload = {"model": model, "messages": [{"role": "user", "content": "Invent a person."}], "stream": True,
               "max_tokens": 200, "response_format": {"type": "json_schema", "json_schema": {
                   "name": "p", "schema": PERSON}}}
    text = ""
    with http.stream("POST", "/v1/chat/completions", json=payload) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:])["choices"]:
                    text += choice["delta"].get("content") or ""
    jsonschema.validate(json.loads(text), PERSON)


@pytest.mark.parametrize("schema, fragment", [
    ({"type": "object", "properties": {"mail": {"type": "string", "format": "email"}}}, "email"),
    ({"type": "string", "pattern": "^(?=a)b"}, "pattern"),
    ({"type": "string", "pattern": "^\\d+$"}, "pattern"),
    ({"type": "object", "patternProperties": {"^x": {"type": "string"}}}, "patternProperties"),
    ({"not": {"type": "string"}}, "not"),
    ({"type": "number", "minimum": 3}, "integer"),
    ({"type": "array", "uniqueItems": True}, "uniqueItems"),
])
def test_unenforceable_schema_is_refused(http, model, schema, fragment):
    r = http.post("/v1/chat/completions", json={
        "model": model, "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
    assert r.status_code == 400, r.text
    assert fragment in r.json()["message"] and r.json()["param"].startswith("response_format")


@pytest.mark.parametrize("response_format", [
    {"type": "json_schema"}, {"type": "xml"}, {"type": "json_schema", "json_schema": {"schema": {}}},
])
def test_malformed_response_format(http, model, response_format):
    r = http.post("/v1/chat/completions", json={
        "model": model, "messages": [{"role": "user", "content": "x"}], "response_format": response_format})
    assert r.status_code == 422 and r.json()["object"] == "error"
