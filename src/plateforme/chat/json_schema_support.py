"""Check that a JSON schema can be enforced by constrained decoding, before generating.

llama.cpp turns JSON schemas into grammars but silently ignores what it cannot express; a
schema using such a feature would then not be guaranteed. Those features are refused up front
with a 400 that names them. So is a schema (response format or tool parameters) nested deeper
than MAX_SCHEMA_DEPTH levels of objects and arrays: the checks, bounds and grammar built from
a schema walk it recursively.
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
# Levels of nested JSON objects and arrays a schema may have (the schema itself is level 1).
MAX_SCHEMA_DEPTH = 64
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


def too_deep_at(schema) -> str | None:
    """The JSON pointer of the first node nested deeper than MAX_SCHEMA_DEPTH, or None."""
    stack = [(schema, "#", 1)]
    while stack:
        node, path, depth = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        if depth > MAX_SCHEMA_DEPTH:
            return path
        items = node.items() if isinstance(node, dict) else enumerate(node)
        stack.extend((value, f"{path}/{key}", depth + 1) for key, value in items)
    return None


def check_depth(schema, param: str) -> None:
    """Refuse (400, `param`) a schema nested deeper than MAX_SCHEMA_DEPTH, before anything recurses into it."""
    where = too_deep_at(schema)
    if where is not None:
        shown = where if len(where) <= 120 else where[:120] + "..."
        raise InvalidChatRequest(
            f"{param}: this JSON schema is nested deeper than {MAX_SCHEMA_DEPTH} levels of objects and arrays "
            f"(at {shown}); this server accepts at most {MAX_SCHEMA_DEPTH}. Flatten it.",
            param=param)


def check_schema(schema: dict, param: str) -> None:
    check_depth(schema, param)
    problems = unsupported_features(schema)
    if problems:
        raise InvalidChatRequest(
            "this JSON schema cannot be enforced by constrained decoding: " + "; ".join(problems[:8])
            + ". Remove or rewrite these parts.", param=param)
