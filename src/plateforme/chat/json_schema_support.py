"""Check that a JSON schema can be enforced by constrained decoding, before generating.

llama.cpp turns JSON schemas into grammars but silently ignores what it cannot express; a
schema using such a feature would then not be guaranteed. Those features are refused up front
with a 400 that names them.
"""

import re

from plateforme.chat.errors import InvalidChatRequest

# Keywords the grammar enforces, and annotations that do not constrain anything.
_ENFORCED = {
    "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
    "maxItems", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions",
    "pattern", "format", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum",
}
_ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$comment",
                "deprecated", "readOnly", "writeOnly", "strict"}
_FORMATS = {"date", "time", "date-time", "uuid"}
_SCHEMA_MAPS = {"properties", "$defs", "definitions"}
_SCHEMA_LISTS = {"anyOf", "oneOf", "allOf", "prefixItems"}
# Regex constructs the grammar converter cannot express.
_BAD_REGEX = re.compile(r"\(\?[=!<]|\\[1-9bBdDwWsS]|\\p\{")


def unsupported_features(schema, path: str = "#") -> list[str]:
    """`path: keyword` for every feature of `schema` that constrained decoding cannot enforce."""
    if isinstance(schema, bool):
        return []
    if not isinstance(schema, dict):
        return [f"{path}: a schema must be an object, not {type(schema).__name__}"]
    found = []
    for key, value in schema.items():
        where = f"{path}/{key}"
        if key in _ANNOTATIONS:
            continue
        if key not in _ENFORCED:
            found.append(f"{where} (keyword {key!r})")
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            for name, sub in value.items():
                found += unsupported_features(sub, f"{where}/{name}")
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            for i, sub in enumerate(value):
                found += unsupported_features(sub, f"{where}/{i}")
        elif key in ("items", "additionalProperties") and isinstance(value, (dict, bool)):
            found += unsupported_features(value, where)
        elif key == "format" and value not in _FORMATS:
            found.append(f"{where} (format {value!r}; supported: {', '.join(sorted(_FORMATS))})")
        elif key == "pattern" and (not isinstance(value, str) or _BAD_REGEX.search(value)):
            found.append(f"{where} (pattern {value!r} uses look-around, back-references or "
                         "character classes like \\d; spell them as [0-9] etc.)")
        elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") \
                and schema.get("type") != "integer":
            found.append(f"{where} (numeric bounds are only enforced for type integer)")
    return found


def check_schema(schema: dict, param: str) -> None:
    problems = unsupported_features(schema)
    if problems:
        raise InvalidChatRequest(
            "this JSON schema cannot be enforced by constrained decoding: " + "; ".join(problems[:8])
            + ". Remove or rewrite these parts.", param=param)
