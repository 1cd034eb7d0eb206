"""A conversation's entries as the chat messages the model reads (OpenAI-protocol messages).

- message.input / message.output: a user or assistant message (the text of its chunks; an
  answer's tool_reference chunks are left out, the model read the tool results they came from);
- function.call and tool.execution entries made in a row are one assistant message with their
  tool calls, followed by the results the model read: a tool execution's result is kept in its
  entry's info (`content`, with the call's `tool_call_id` and `function`), a function's result
  is the client's function.result entry;
- agent.handoff: nothing (the next agent reads the conversation under its own instructions).
"""

import json

from plateforme.conversations.entries import text_of

# The keys of a ToolExecutionEntry's info that the loop writes for the replay (beside the tool's own info).
CONTENT, CALL_ID, FUNCTION = "content", "tool_call_id", "function"
CALL_TYPES = ("function.call", "tool.execution")


def arguments_text(arguments) -> str:
    """A call's arguments as the JSON text tool calls carry."""
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def _call_of(entry: dict) -> dict:
    if entry["type"] == "function.call":
        call_id, name = entry["tool_call_id"], entry["name"]
    else:
        info = entry.get("info") or {}
        call_id, name = info.get(CALL_ID) or entry["id"], info.get(FUNCTION) or entry["name"]
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments_text(
        entry.get("arguments") or "{}")}}


def _tool_message(call_id: str, name: str, content: str) -> dict:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}


def chat_messages(entries: list[dict], instructions: str | None = None) -> list[dict]:
    """The messages of `entries` (in order), after a system message of `instructions` if any."""
    out: list[dict] = [{"role": "system", "content": instructions}] if instructions else []
    called: dict[str, str] = {}  # tool_call_id -> function name, of the calls already in `out`
    i = 0
    while i < len(entries):
        entry = entries[i]
        kind = entry.get("type")
        if kind in CALL_TYPES:
            calls, results = [], []
            while i < len(entries) and entries[i].get("type") in CALL_TYPES:
                call = _call_of(entries[i])
                call_id, name = call["id"], call["function"]["name"]
                if call_id not in called:
                    calls.append(call)
                    called[call_id] = name
                if entries[i]["type"] == "tool.execution":  # a call and its result in one entry
                    content = (entries[i].get("info") or {}).get(CONTENT)
                    results.append(_tool_message(call_id, name, content if isinstance(content, str) else ""))
                i += 1
            if calls:
                out.append({"role": "assistant", "content": "", "tool_calls": calls})
            out += results
            continue
        if kind == "function.result":
            call_id = entry["tool_call_id"]
            out.append(_tool_message(call_id, called.get(call_id, "function"), entry.get("result") or ""))
        elif kind in ("message.input", "message.output"):
            role = entry.get("role") or ("assistant" if kind == "message.output" else "user")
            out.append({"role": role, "content": text_of(entry.get("content"))})
        i += 1
    return out


def pending_calls(entries: list[dict]) -> dict[str, dict]:
    """The function.call entries of `entries` still unanswered (no function.result, no
    tool.execution of the same tool_call_id after them), by tool_call_id, in order."""
    pending: dict[str, dict] = {}
    for entry in entries:
        kind = entry.get("type")
        if kind == "function.call":
            pending[entry["tool_call_id"]] = entry
        elif kind == "function.result":
            pending.pop(entry.get("tool_call_id"), None)
        elif kind == "tool.execution":
            pending.pop((entry.get("info") or {}).get(CALL_ID), None)
    return pending
