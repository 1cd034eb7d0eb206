"""Refuse JSON request bodies that parse but cannot be served: answered 400, naming the field.

Python's JSON parser accepts more than JSON: `NaN`, `Infinity` and numbers like `1e400` (read
as infinity), and lone UTF-16 surrogates (`"\\ud800"`), which are no Unicode character and
cannot be encoded as UTF-8 for the model engine or the database. It also reads structures
nested far deeper than any request needs, and recursive code downstream (schema bounding,
copies, encoders) would then exhaust the stack. Every JSON body is therefore checked here,
before any route sees it, and refused with a 400 that names the first offending field:

- no lone surrogate in any string or object key;
- no `NaN`, `Infinity`, `-Infinity`, nor a number too large for a 64-bit float;
- at most MAX_JSON_DEPTH levels of nested arrays and objects.

The body is read whole (BodySizeLimit, outside this middleware, caps its size) and handed on
unchanged. A body that is not valid JSON at all is left to the route's own parsing error.
"""

import json
import math
import re
from itertools import accumulate

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plateforme.api.errors import error_body

MAX_JSON_DEPTH = 100
_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# The path named in a depth error: enough to find the field, not a hundred components.
_PATH_SHOWN = 8


class _NonFinite:
    def __init__(self, token: str):
        self.token = token


_CONTAINERS = (dict, list)
# A lone surrogate can only come from a \uD800-\uDFFF escape or from raw surrogate bytes
# (ED A0-BF, which Python's parser lets through): bodies without either skip the string checks.
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
# The nesting depth of a valid UTF-8 JSON text, read from its bytes: strings removed, brackets counted.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = bytes(range(256)).translate(None, b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def _lone_surrogate(text: str) -> str | None:
    """The first lone surrogate of `text`, as its JSON escape; None when there is none."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"\\u{ord(text[exc.start]):04x}"
    return None


def _path(entry, key=None, shown: int | None = None) -> str | None:
    """The dotted path of a container entry (node, depth, parent, key), plus `key` if given;
    only its first `shown` parts when given."""
    parts = [] if key is None else [key]
    while entry is not None and entry[2] is not None:
        parts.append(entry[3])
        entry = entry[2]
    return ".".join(str(part) for part in reversed(parts[-shown if shown else None:])) or None


def _scalar_problem(value, strings: bool) -> str | None:
    if strings and value.__class__ is str:
        surrogate = _lone_surrogate(value)
        if surrogate:
            return (f"the string holds a lone UTF-16 surrogate ({surrogate}), which is not a Unicode "
                    "character; send valid UTF-8 text (a pair like \\ud83d\\ude00 is fine).")
    elif value.__class__ is _NonFinite:
        return (f"{value.token} is not a finite number; JSON has no NaN or Infinity, and numbers must "
                "fit a 64-bit float.")
    return None


def body_problem(value, strings: bool = True, scalars: bool = True) -> tuple[str, str | None] | None:
    """(message, param) for the first thing in a parsed body that cannot be served, or None.

    `strings`: look for lone surrogates; `scalars`: look at strings and numbers at all (with
    neither, only the nesting depth is checked).
    """
    if value.__class__ not in _CONTAINERS:
        problem = _scalar_problem(value, strings) if scalars else None
        return (f"body: {problem}", None) if problem else None
    stack = [(value, 1, None, None)]
    while stack:
        entry = stack.pop()
        node, depth = entry[0], entry[1]
        if depth > MAX_JSON_DEPTH:
            where = _path(entry, shown=_PATH_SHOWN)
            return (f"{where or 'body'}: JSON nested deeper than {MAX_JSON_DEPTH} levels of arrays and "
                    f"objects; this server accepts at most {MAX_JSON_DEPTH}. Flatten the structure.", where)
        items = node.items() if node.__class__ is dict else enumerate(node)
        for key, item in items:
            if strings and key.__class__ is str and _lone_surrogate(key):
                where = _path(entry)
                return (f"{where or 'body'}: an object key holds a lone UTF-16 surrogate "
                        f"({_lone_surrogate(key)}), which is not a Unicode character; send valid UTF-8 text.",
                        where)
            if item.__class__ in _CONTAINERS:
                stack.append((item, depth + 1, entry, key))
            elif scalars:
                problem = _scalar_problem(item, strings)
                if problem:
                    where = _path(entry, key)
                    return f"{where or 'body'}: {problem}", where
    return None


def _is_json(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"content-type":
            kind = value.split(b";")[0].strip().lower()
            return kind == b"application/json" or (kind.startswith(b"application/") and kind.endswith(b"+json"))
    return False


async def _refuse(send: Send, message: str, param: str | None) -> None:
    body = json.dumps(error_body(400, message, "invalid_request_error", param)).encode()
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class JSONBodyGuard:
    """ASGI middleware: a JSON body with lone surrogates, non-finite numbers or deep nesting gets a 400."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _METHODS or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # disconnected while sending the body
                await self.app(scope, _replay([], message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = _check(body)
        if problem is not None:
            await _refuse(send, *problem)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], None, receive),
                       send)


def _check(body: bytes) -> tuple[str, str | None] | None:
    if not body.strip():
        return None
    non_finite = []

    def number(token: str):
        value = float(token)
        if math.isfinite(value):
            return value
        non_finite.append(token)
        return _NonFinite(token)

    def constant(token: str) -> _NonFinite:
        non_finite.append(token)
        return _NonFinite(token)

    try:
        parsed = json.loads(body, parse_constant=constant, parse_float=number)
    except RecursionError:
        return (f"body: JSON nested deeper than {MAX_JSON_DEPTH} levels of arrays and objects; this server "
                f"accepts at most {MAX_JSON_DEPTH}. Flatten the structure.", None)
    except ValueError:  # not JSON at all (or not UTF-8): the route answers with its parsing error
        return None
    if json.detect_encoding(body) != "utf-8":  # UTF-16/32: the byte scans below do not apply
        return body_problem(parsed)
    strings = _MAYBE_SURROGATE.search(body) is not None
    if not strings and not non_finite and not _deeper_than_allowed(body):
        return None  # the common case: one parse and a few scans of the bytes
    return body_problem(parsed, strings=strings, scalars=strings or bool(non_finite))


def _deeper_than_allowed(body: bytes) -> bool:
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > MAX_JSON_DEPTH


def _replay(messages: list[Message], last: Message | None, receive: Receive) -> Receive:
    """A receive that gives `messages` (then `last`) first, then defers to the real one."""
    pending = [*messages, *([last] if last is not None else [])]

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
