"""Validate JSON against schemas of Mistral's official OpenAPI spec (../shared/mistral-openapi)."""

import copy
import functools
import json
from pathlib import Path

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

CURRENT, FINE_TUNING = "openapi.yaml", "openapi-with-fine-tuning.yaml"
SPEC_URI = "urn:mistral-openapi"


def spec_path(name: str = CURRENT) -> Path:
    shared = Path(__file__).resolve().parents[2] / "shared" / "mistral-openapi" / name
    return shared if shared.is_file() else Path(__file__).resolve().parent / "mistral-openapi" / name


SPEC_PATH = spec_path()


@functools.cache
def _spec(name: str = CURRENT) -> dict:
    # libyaml's loader when PyYAML has it: the same document, parsed in a quarter of the time.
    spec = yaml.load(spec_path(name).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    _fix_number_bounds(spec)
    if name == CURRENT:
        # Spec error (see shared/mistral-openapi/README.md): real chat responses have no `data`.
        response = spec["components"]["schemas"]["ChatCompletionResponse"]["allOf"][1]
        response["required"] = [f for f in response["required"] if f != "data"]
    return spec


def _fix_number_bounds(node) -> None:
    """YAML reads the spec's `minimum: 1e-08` (no dot) as a string; make such bounds numbers."""
    if isinstance(node, dict):
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if isinstance(node.get(key), str):
                node[key] = float(node[key])
        for value in node.values():
            _fix_number_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _fix_number_bounds(value)


@functools.cache
def _registry(name: str = CURRENT) -> Registry:
    return Registry().with_resource(SPEC_URI, Resource(contents=_spec(name), specification=DRAFT202012))


def schema(name: str) -> dict:
    return copy.deepcopy(_spec()["components"]["schemas"][name])


def validate(instance, schema_name: str, spec: str = CURRENT) -> None:
    """Raise jsonschema.ValidationError when `instance` does not match the named schema of `spec`
    (CURRENT: Mistral's spec of today; FINE_TUNING: the older one with the fine-tuning routes)."""
    ref = {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}
    validator = jsonschema.Draft202012Validator(ref, registry=_registry(spec))
    errors = sorted(validator.iter_errors(instance), key=lambda e: e.path)
    if errors:
        raise jsonschema.ValidationError(
            f"{schema_name}: {errors[0].message} at {list(errors[0].path)} in {json.dumps(instance)[:500]}"
        )


def sse_chunks(text: str) -> tuple[list[dict], bool]:
    """Parse an SSE body into its JSON chunks, and whether it ended with `data: [DONE]`."""
    chunks, done = [], False
    for line in text.splitlines():
        if not line.startswith("data: "):
            continue
        data = line[len("data: "):]
        if data == "[DONE]":
            done = True
        else:
            chunks.append(json.loads(data))
    return chunks, done


def validate_response(path: str, method: str, status: int, body) -> None:
    """Validate `body` against the spec's JSON response schema of operation METHOD PATH."""
    assert 200 <= status < 300, (path, method, status, body)
    responses = _spec()["paths"][path][method]["responses"]
    answer = responses.get(str(status), responses.get("200"))
    if "content" not in answer:  # a 204: no body at all
        assert body in (None, b"", ""), (path, method, status, body)
        return
    content = answer["content"]["application/json"]["schema"]
    if "$ref" not in content:  # an inline schema (e.g. a signed URL: a string)
        jsonschema.Draft202012Validator(content, registry=_registry()).validate(body)
        return
    validate(body, content["$ref"].rsplit("/", 1)[-1])
