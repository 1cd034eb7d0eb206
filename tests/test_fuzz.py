"""Schema-driven fuzzing (schemathesis) of every route in the app's own OpenAPI, against a live
server with a real admin key: whatever the input, no 500 and the server keeps serving."""

import httpx
import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from server_process import default_model_entry

EXAMPLES_PER_ROUTE = 12


@pytest.fixture(scope="module")
def fuzz_server(start_server):
    # A small context keeps any generated request short, whatever max_tokens the fuzzer picks.
    return start_server(models=[default_model_entry(parallel=4, max_queue=8, context_length=256)],
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
    for operation, mode in [(op, mode) for op in operations for mode in GenerationMode]:
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


def test_server_still_serves_after_fuzzing(fuzz_server):
    assert fuzz_server.health().status_code == 200
