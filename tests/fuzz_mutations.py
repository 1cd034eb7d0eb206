"""Hostile variants of a valid request, as raw bytes: what a schema-driven fuzzer does not generate.

A mutation swaps one value of a request for a hostile one. In a JSON body the value is written
as a raw JSON token, so that `NaN`, `1e400` or `"\\ud800"` reach the server exactly as written
(no JSON library would write them); in a URL it is written percent-encoded.
"""

import json
import random
from urllib.parse import quote

# JSON text each mutation may put in place of a value of the kind it applies to.
_LONE_SURROGATES = [b'"\\ud800"', b'"tail \\udfff"', b'"x\\udbff\\u0041"', b'"\xed\xa0\x80 raw"']
_UNICODE = ['"\U0001F600 caf\u00e9 \u202egnp.exe\u200f \u4f60\u597d e\u0301 \U0001F9D1\u200d\U0001F4BB"',
            '"\\ud83d\\ude00 \\u202e\\u2066rtl\\u2069 \\ufeff\\uffff"']
_NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1E+999"]
_HUGE_INTEGERS = [str(10**30).encode(), str(-10**30).encode(), str(2**63).encode(), str(2**64 + 1).encode()]
NESTING = 300

MUTATIONS = ("lone_surrogate", "unicode", "non_finite", "huge_integer", "deep_nesting")
# Mutations no server may accept in a JSON body.
REFUSED_IN_BODIES = ("lone_surrogate", "non_finite", "deep_nesting")

_SENTINEL = "__fuzz_mutant_value__"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _values(node, path=()):
    """(path, value) of every value in a JSON document, the document itself first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _values(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _values(value, (*path, i))


def _applies(mutation: str, value) -> bool:
    if mutation in ("lone_surrogate", "unicode"):
        return isinstance(value, str)
    if mutation in ("non_finite", "huge_integer"):
        return _is_number(value)
    return True


def _token(mutation: str, value, rng: random.Random) -> bytes:
    if mutation == "lone_surrogate":
        return rng.choice(_LONE_SURROGATES)
    if mutation == "unicode":
        return rng.choice(_UNICODE).encode()
    if mutation == "non_finite":
        return rng.choice(_NON_FINITE)
    if mutation == "huge_integer":
        return rng.choice(_HUGE_INTEGERS)
    inner = json.dumps(value).encode()
    if rng.random() < 0.5:
        return b"[" * NESTING + inner + b"]" * NESTING
    return b'{"a": ' * NESTING + inner + b"}" * NESTING


def _replaced(document, path: tuple, new):
    if not path:
        return new
    copy = json.loads(json.dumps(document))
    parent = copy
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = new
    return copy


def mutated_body(body, mutation: str, rng: random.Random) -> bytes | None:
    """`body` as JSON bytes with one value mutated; None when no value fits the mutation."""
    candidates = [(path, value) for path, value in _values(body) if _applies(mutation, value)]
    inner = [c for c in candidates if c[0]]  # mutate inside the document where possible
    if not (inner or candidates):
        return None
    path, value = rng.choice(inner or candidates)
    text = json.dumps(_replaced(body, path, _SENTINEL)).encode()
    return text.replace(json.dumps(_SENTINEL).encode(), _token(mutation, value, rng), 1)


def _url_token(mutation: str, value, rng: random.Random) -> str | None:
    if mutation == "lone_surrogate":
        return "%ED%A0%80" + quote(str(value)[:8])  # the UTF-8-style bytes of U+D800
    if mutation == "unicode":
        return quote("\U0001F600 caf\u00e9 \u202egnp\u200f \u4f60\u597d")
    if mutation == "non_finite":
        return rng.choice(["NaN", "inf", "-Infinity", "1e400"])
    if mutation == "huge_integer":
        return rng.choice([str(10**30), str(-10**30), str(2**63)])
    return None


def _query_text(query: dict, mutated: str | None, raw: str) -> str:
    parts = []
    for key, value in query.items():
        for item in value if isinstance(value, list) else [value]:
            text = json.dumps(item) if isinstance(item, bool) or item is None else str(item)
            parts.append(f"{quote(key)}={raw if key == mutated else quote(text, safe='')}")
    return "&".join(parts)


def mutated_url(case, mutation: str, rng: random.Random) -> str | None:
    """The case's path and query with one parameter mutated; None when none fits the mutation."""
    params = [("path", k, v) for k, v in (case.path_parameters or {}).items()]
    params += [("query", k, v) for k, v in (case.query or {}).items() if not isinstance(v, (list, dict))]
    fitting = [p for p in params if _applies(mutation, p[2])]
    if mutation == "deep_nesting" or not fitting:
        return None
    where, name, value = rng.choice(fitting)
    raw = _url_token(mutation, value, rng)
    path = case.path
    for key, item in (case.path_parameters or {}).items():
        text = raw if (where, key) == ("path", name) else quote(str(item), safe="")
        path = path.replace("{" + key + "}", text)
    query = _query_text(case.query or {}, name if where == "query" else None, raw)
    return path + (f"?{query}" if query else "")
