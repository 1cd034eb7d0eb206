"""Check one line of a training file (Mistral's fine-tuning format) and normalise it.

A line is `{"messages": [...], "tools": [...]?}`. Roles are system, user, assistant and tool;
assistant messages may carry `tool_calls` and `"weight": 0|1` (0: not trained on); tool messages
answer an earlier call through `tool_call_id`. Content is a string or a list of text chunks.
"""

import json
from dataclasses import dataclass

ROLES = ("system", "user", "assistant", "tool")


class BadLine(ValueError):
    """This line cannot be trained on; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Conversation:
    messages: list[dict]  # role, content (str), and tool_calls / tool_call_id / name where given
    weights: list[int]  # per message: 1 for a trained assistant turn, else 0
    tools: list[dict] | None


def _text(content, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for chunk in content:
            if not isinstance(chunk, dict) or chunk.get("type") != "text" or not isinstance(chunk.get("text"), str):
                raise BadLine(f"{where}: content chunks must be {{\"type\": \"text\", \"text\": ...}}; "
                              "only text can be trained on")
            parts.append(chunk["text"])
        return "".join(parts)
    raise BadLine(f"{where}: content must be a string or a list of text chunks")


def _tools(raw) -> list[dict] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise BadLine("tools must be a list")
    for i, tool in enumerate(raw):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise BadLine(f"tools[{i}] must be {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}")
        if tool.get("type", "function") != "function":
            raise BadLine(f"tools[{i}]: type must be 'function'")
        if function.get("parameters") is not None and not isinstance(function["parameters"], dict):
            raise BadLine(f"tools[{i}]: function.parameters must be a JSON schema object")
    return raw or None


def _tool_calls(raw, where: str, tool_names: set[str] | None) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        raise BadLine(f"{where}: tool_calls must be a non-empty list")
    calls = []
    for j, call in enumerate(raw):
        at = f"{where}.tool_calls[{j}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise BadLine(f"{at} must be {{\"id\", \"type\": \"function\", \"function\": {{\"name\", \"arguments\"}}}}")
        if not isinstance(call.get("id"), str) or not call["id"]:
            raise BadLine(f"{at} has no id (tool messages answer a call by its id)")
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                raise BadLine(f"{at}.function.arguments is not valid JSON") from None
        if not isinstance(arguments, dict):
            raise BadLine(f"{at}.function.arguments must be a JSON object (as a string)")
        if tool_names is not None and function["name"] not in tool_names:
            raise BadLine(f"{at} calls function {function['name']!r}, which is not in this line's tools")
        calls.append({"id": call["id"], "type": "function",
                      "function": {"name": function["name"], "arguments": json.dumps(arguments, ensure_ascii=False)}})
    return calls


def _weight(message: dict, where: str, role: str) -> int:
    if "weight" not in message:
        return 1 if role == "assistant" else 0
    weight = message["weight"]
    if role != "assistant":
        raise BadLine(f"{where}: weight is only allowed on assistant messages")
    if isinstance(weight, bool) or weight not in (0, 1):
        raise BadLine(f"{where}: weight must be 0 or 1, got {weight!r}")
    return int(weight)


def check_line(text: str) -> Conversation:
    """The conversation of one JSONL line, or BadLine with the reason."""
    try:
        line = json.loads(text)
    except ValueError as exc:
        raise BadLine(f"not valid JSON: {exc}") from None
    if not isinstance(line, dict):
        raise BadLine("a line must be a JSON object with a messages list")
    raw = line.get("messages")
    if not isinstance(raw, list) or not raw:
        raise BadLine("no messages: a line needs a non-empty messages list")
    tools = _tools(line.get("tools"))
    tool_names = {t["function"]["name"] for t in tools} if tools else None
    messages, weights, call_ids = [], [], set()
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise BadLine(f"{where} must be an object")
        role = message.get("role")
        if role not in ROLES:
            raise BadLine(f"{where}: role must be one of {', '.join(ROLES)}, got {role!r}")
        content = _text(message.get("content"), where)
        out = {"role": role, "content": content}
        if role == "assistant" and message.get("tool_calls"):
            out["tool_calls"] = _tool_calls(message["tool_calls"], where, tool_names)
            call_ids.update(c["id"] for c in out["tool_calls"])
        elif not content.strip():
            raise BadLine(f"{where}: empty content")
        if role == "tool":
            if message.get("tool_call_id") not in call_ids:
                raise BadLine(f"{where}: tool message without a matching call (tool_call_id "
                              f"{message.get('tool_call_id')!r} answers no earlier assistant tool call)")
            out["tool_call_id"] = message["tool_call_id"]
            if isinstance(message.get("name"), str):
                out["name"] = message["name"]
        weights.append(_weight(message, where, role))
        messages.append(out)
    if not any(weights):
        raise BadLine("no trainable assistant message (every assistant message has weight 0, or there is none)")
    return Conversation(messages, weights, tools)
