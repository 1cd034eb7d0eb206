"""Tool calls in Mistral's token format: read from the model's output, or forced by the gateway.

Formats (mistral-common):
- v2 to v7: `[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]` (JSON after one control token);
- v11+: `[TOOL_CALLS]name[ARGS]{...}` per call (v11 may add `[CALL_ID]id` before `[ARGS]`).

When a call is required (tool_choice any/required/named), the gateway appends the control
token(s) to the prompt itself and constrains what follows with a JSON schema (and, in v11+, a
grammar over the function names), so even a model that would never emit the format produces
valid calls.
"""

import json
import re

from mistral_common.experimental.tools import _decode_tool_calls, _split_content_and_tool_calls
from mistral_common.tokens.tokenizers.base import TokenizerVersion
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

from plateforme.chat.errors import InvalidChatRequest
from plateforme.chat.json_bounds import compact_schema, declared_only
from plateforme.chat.tool_ids import new_tool_call_id
from plateforme.engines.openai_client import OpenAIEngineClient
from plateforme.engines.token_generation import generate_text

MAX_PARALLEL_CALLS = 8
_MISTRAL_ID = re.compile(r"^[A-Za-z0-9]{9}$")
_NO_PARAMETERS = {"type": "object", "properties": {}}


def tool_calls_token(tokenizer: MistralTokenizer) -> int | None:
    """The [TOOL_CALLS] control token id, None when the tokenizer has no tool calls (v1)."""
    return getattr(tokenizer.instruct_tokenizer, "TOOL_CALLS", None)


def _mistral_call(index: int, name: str, arguments, call_id: str | None = None) -> dict:
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return {"id": call_id if call_id and _MISTRAL_ID.match(call_id) else new_tool_call_id(),
            "type": "function", "index": index, "function": {"name": name, "arguments": arguments}}


def parse_tool_calls(tokenizer: MistralTokenizer, tokens: list[int]) -> list[dict] | None:
    """Calls in the generated `tokens` (from [TOOL_CALLS] on); None when they do not parse."""
    inner = tokenizer.instruct_tokenizer.tokenizer
    tokens = [t for t in tokens if t != inner.eos_id]
    try:
        _, call_tokens = _split_content_and_tool_calls(tokens, tool_calls_token(tokenizer))
        calls = _decode_tool_calls(call_tokens, inner)
    except (ValueError, AssertionError):
        return None
    return [_mistral_call(i, c.function.name, c.function.arguments, c.id) for i, c in enumerate(calls)] or None


def _call_schema(tool: dict) -> dict:
    function = tool["function"]
    return {"type": "object", "additionalProperties": False, "required": ["name", "arguments"],
            "properties": {"name": {"const": function["name"]},
                           "arguments": declared_only(function.get("parameters") or _NO_PARAMETERS)}}


def _loads(text: str, what: str):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidChatRequest(f"the model's {what} was cut off before it was complete; raise max_tokens",
                                 param="max_tokens") from exc


async def forced_tool_calls(client: OpenAIEngineClient, tokenizer: MistralTokenizer, prompt: list[int],
                            tools: list[dict], params: dict, max_tokens: int | None,
                            parallel: bool) -> tuple[list[dict], int]:
    """Generate calls the model must make; (calls, completion tokens incl. injected control tokens)."""
    params = {k: v for k, v in params.items() if k not in ("stop", "n_probs", "x_top_logprobs")}
    instruct = tokenizer.instruct_tokenizer
    start = [instruct.TOOL_CALLS]
    if tokenizer.version <= TokenizerVersion.v7:
        items = {"anyOf": [_call_schema(t) for t in tools]} if len(tools) > 1 else _call_schema(tools[0])
        schema = {"type": "array", "items": items, "minItems": 1,
                  "maxItems": min(MAX_PARALLEL_CALLS, 2 * len(tools)) if parallel else 1}
        text, done = await generate_text(client, prompt + start, {**params, "json_schema": compact_schema(schema)},
                                         max_tokens)
        unique = []
        for call in _loads(text, "tool call"):
            if call not in unique:
                unique.append(call)
        calls = [_mistral_call(i, c["name"], c["arguments"]) for i, c in enumerate(unique)]
        return calls, done.completion_tokens + len(start)
    # v11+: pick the function name (constrained to the offered ones), then its arguments.
    used = len(start)
    name = tools[0]["function"]["name"]
    if len(tools) > 1:
        names = " | ".join(json.dumps(t["function"]["name"]) for t in tools)
        text, done = await generate_text(client, prompt + start, {**params, "grammar": f"root ::= {names}"}, 64)
        name, used = text.strip(), used + done.completion_tokens
        if name not in {t["function"]["name"] for t in tools}:
            raise InvalidChatRequest("the model's function name was cut off; raise max_tokens", param="max_tokens")
    head = start + instruct.tokenizer.encode(name, bos=False, eos=False) + [instruct.ARGS]
    parameters = next(t["function"].get("parameters") for t in tools if t["function"]["name"] == name)
    schema = compact_schema(declared_only(parameters or _NO_PARAMETERS))
    remaining = None if max_tokens is None else max(1, max_tokens - used)
    text, done = await generate_text(client, prompt + head, {**params, "json_schema": schema}, remaining)
    # The name's tokens are counted once, as re-encoded in `head`.
    return [_mistral_call(0, name, _loads(text, "tool call arguments"))], len(head) + done.completion_tokens
