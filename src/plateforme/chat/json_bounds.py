"""Bounds that make constrained JSON always finish.

A small model under a JSON grammar can stay inside one string forever ("glass_glass_glass...")
until max_tokens cuts it, leaving JSON that does not parse. JSON mode therefore uses a grammar
whose strings, arrays, objects and nesting are bounded, and JSON-schema mode gives unbounded
strings a generous maxLength. Answers stay valid JSON and still follow the user's schema.
"""

import copy

MAX_STRING = 512
MAX_KEY = 64
# JSON mode: members an object or array may hold, by nesting depth (deepest holds scalars only).
MEMBERS_BY_DEPTH = (12, 8, 4)
JSON_MODE_STRING = 160

_COMMON = r'''
char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
string ::= "\"" char{0,%d} "\""
key ::= "\"" char{1,%d} "\""
number ::= "-"? ([0-9] | [1-9] [0-9]{1,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?
ws ::= | " " | "\n" [ \t]{0,20}
''' % (JSON_MODE_STRING, MAX_KEY)


def json_object_grammar() -> str:
    """GBNF for one JSON object whose nesting, member counts and string lengths are bounded."""
    depth_count = len(MEMBERS_BY_DEPTH)
    rules = ["root ::= object0"]
    for depth, members in enumerate(MEMBERS_BY_DEPTH):
        inner = f"object{depth + 1} | array{depth + 1} | " if depth + 1 < depth_count else ""
        more = members - 1
        rules += [
            f'value{depth} ::= {inner}string | number | "true" | "false" | "null"',
            f'object{depth} ::= "{{" ws ( key ws ":" ws value{depth} ( ws "," ws key ws ":" ws value{depth} )'
            f'{{0,{more}}} )? ws "}}"',
            f'array{depth} ::= "[" ws ( value{depth} ( ws "," ws value{depth} ){{0,{more}}} )? ws "]"',
        ]
    return "\n".join(rules) + _COMMON


# llguidance (llama.cpp's JSON-schema engine): JSON written as json.dumps writes it, with no free
# whitespace (a weak model could otherwise emit whitespace until max_tokens).
_COMPACT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def compact_schema(schema: dict) -> dict:
    """`schema` with bounded strings, generated as compact JSON."""
    return {**bounded_schema(schema), "x-guidance": _COMPACT}


def declared_only(schema: dict) -> dict:
    """A tool's arguments schema whose objects allow only their declared properties (unless they
    say otherwise), so a forced call always ends, whatever schema engine the server uses: by JSON
    Schema's rules `{"type": "object", "properties": {}}` (how MCP servers describe a tool without
    arguments) admits any arguments. llama.cpp's own converter already reads it as none; this does
    not rely on it. The tool would ignore undeclared arguments anyway."""
    out = copy.deepcopy(schema)
    stack = [out]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            stack += list((node.get("properties") or {}).values())
            stack += [node[k] for k in ("items",) if isinstance(node.get(k), dict)]
    return out


def bounded_schema(schema: dict) -> dict:
    """`schema` with maxLength on every free-form string that has none."""
    out = copy.deepcopy(schema)
    _bound(out)
    return out


def _bound(node) -> None:
    if isinstance(node, list):
        for item in node:
            _bound(item)
        return
    if not isinstance(node, dict):
        return
    types = node.get("type")
    is_string = types == "string" or (isinstance(types, list) and "string" in types)
    if is_string and not {"maxLength", "enum", "const", "pattern", "format"} & node.keys():
        node["maxLength"] = MAX_STRING
    for key, value in node.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            for sub in value.values():
                _bound(sub)
        elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "prefixItems"):
            _bound(value)
