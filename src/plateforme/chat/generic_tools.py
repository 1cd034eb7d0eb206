"""Tool calling for models whose chat template knows nothing of tools.

The tools are described in a system message, and the answer is constrained (llama.cpp JSON-schema
grammar) to `{"tool_calls": [{"name": ..., "arguments": {...}}, ...]}` or, when the model may
choose (`tool_choice: auto`), `{"content": "..."}`. The gateway turns that JSON back into a
Mistral assistant message. Works with any model, however small, because the grammar leaves it
no way to answer off-format.
"""

import json

from plateforme.chat.json_bounds import declared_only
from plateforme.chat.tool_ids import new_tool_call_id
from plateforme.chat.tool_names import named_tool_results

MAX_PARALLEL_CALLS = 8


def _call_schema(tool: dict) -> dict:
    function = tool["function"]
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    return {
        "type": "object",
        "properties": {"name": {"const": function["name"]}, "arguments": declared_only(parameters)},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def answer_schema(tools: list[dict], must_call: bool, parallel: bool) -> dict:
    """The JSON schema the constrained answer must follow."""
    calls = {
        "type": "array",
        "items": {"anyOf": [_call_schema(t) for t in tools]} if len(tools) > 1 else _call_schema(tools[0]),
        "minItems": 1,
        # Small models repeat a call until the limit: allow a few calls per tool, not more.
        "maxItems": min(MAX_PARALLEL_CALLS, 2 * len(tools)) if parallel else 1,
    }
    with_calls = {"type": "object", "properties": {"tool_calls": calls}, "required": ["tool_calls"],
                  "additionalProperties": False}
    if must_call:
        return with_calls
    with_content = {"type": "object", "properties": {"content": {"type": "string"}},
                    "required": ["content"], "additionalProperties": False}
    return {"anyOf": [with_calls, with_content]}


def system_prompt(tools: list[dict], must_call: bool) -> str:
    described = json.dumps([t["function"] for t in tools], ensure_ascii=False)
    how = ('Answer with a JSON object {"tool_calls": [{"name": <function name>, "arguments": '
           '<arguments object>}]} to call functions.')
    if not must_call:
        how += ' If no function is needed, answer with {"content": <your answer>} instead.'
    return f"You can call these functions:\n{described}\n{how}"


def with_tool_prompt(messages: list[dict], tools: list[dict], must_call: bool) -> list[dict]:
    """Messages with the tools described in the system message, and tool traffic as plain text."""
    intro = system_prompt(tools, must_call)
    out = as_plain_messages(messages)
    if out and out[0]["role"] == "system":
        out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{intro}"}
    else:
        out.insert(0, {"role": "system", "content": intro})
    return out


def as_plain_messages(messages: list[dict]) -> list[dict]:
    """Assistant tool calls and tool results rendered as text, for templates without tools."""
    out: list[dict] = []
    for message in named_tool_results(messages):
        if message["role"] == "assistant" and message.get("tool_calls"):
            calls = [{"name": c["function"]["name"], "arguments": _arguments(c["function"]["arguments"])}
                     for c in message["tool_calls"]]
            out.append({"role": "assistant", "content": json.dumps({"tool_calls": calls}, ensure_ascii=False)})
        elif message["role"] == "tool":
            name = message.get("name") or "tool"
            out.append({"role": "user", "content": f"Result of {name} (call {message.get('tool_call_id')}): "
                                                    f"{message.get('content') or ''}"})
        else:
            out.append({k: v for k, v in message.items() if k in ("role", "content")})
    return out


def _arguments(arguments) -> object:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def parse_answer(text: str) -> tuple[str | None, list[dict]]:
    """(content, tool_calls) of a constrained answer. Tool calls in Mistral's shape.

    An answer that is not the constrained JSON (generation cut it short: a stop string, the
    engine stopping early) is the model's plain content, as written: the caller keeps the
    finish reason the engine gave.
    """
    try:
        answer = json.loads(text)
    except ValueError:
        return text, []
    if not isinstance(answer, dict):
        return text, []
    calls = answer.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list) or not calls or not all(_well_formed(c) for c in calls):
            return text, []
        unique = []
        for call in calls:  # the same call twice is one call
            if call not in unique:
                unique.append(call)
        return None, [{"id": new_tool_call_id(), "type": "function", "index": i,
                       "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)}}
                      for i, c in enumerate(unique)]
    content = answer.get("content")
    return (content, []) if isinstance(content, str) else (text, [])


def _well_formed(call) -> bool:
    return isinstance(call, dict) and isinstance(call.get("name"), str) and bool(call["name"]) \
        and isinstance(call.get("arguments"), dict)
