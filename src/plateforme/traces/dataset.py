"""Turn a rated trace into one line of a Mistral fine-tuning file (`{"messages": [...], "tools": [...]}`).

Liked traces teach their original answer; corrected traces teach the correction instead.
Messages are written in the fine-tuning format: text content as plain strings, tool call
arguments as JSON strings, no `prefix` flags.
"""

import json

LIKED, CORRECTED = "liked", "corrected"
KINDS = (LIKED, CORRECTED)


def kind_of(rating: int | None, corrected_answer: str | None) -> str | None:
    """`corrected` when there is a correction, `liked` when rated 1 without one, else None (left out)."""
    if corrected_answer is not None:
        return CORRECTED
    return LIKED if rating == 1 else None


def _text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(chunk.get("text", "") for chunk in content if isinstance(chunk, dict))


def _tool_calls(calls: list[dict]) -> list[dict]:
    out = []
    for call in calls:
        function = call.get("function") or {}
        arguments = function.get("arguments", {})
        out.append({"id": call.get("id"), "type": "function",
                    "function": {"name": function.get("name"),
                                 "arguments": arguments if isinstance(arguments, str)
                                 else json.dumps(arguments, ensure_ascii=False)}})
    return out


def _message(message: dict) -> dict:
    out = {"role": message["role"], "content": _text(message.get("content"))}
    if message.get("tool_calls"):
        out["tool_calls"] = _tool_calls(message["tool_calls"])
        if not out["content"]:
            del out["content"]
    for key in ("tool_call_id", "name"):
        if message.get(key) is not None:
            out[key] = message[key]
    return out


def training_line(request: dict, response: dict, corrected_answer: str | None) -> dict:
    """One training example: the request's messages, then the answer to learn (from choice 0)."""
    sent = list(request.get("messages") or [])
    prefix = ""
    if sent and sent[-1].get("role") == "assistant" and sent[-1].get("prefix"):
        prefix = _text(sent.pop().get("content"))  # the answer continued it: learn the whole answer
    messages = [_message(m) for m in sent]
    if corrected_answer is not None:
        answer = {"role": "assistant", "content": corrected_answer}
    else:
        choice = min(response["choices"], key=lambda c: c["index"])
        answer = _message(choice["message"])
        if prefix and "content" in answer and not answer["content"].startswith(prefix):
            answer["content"] = prefix + answer["content"]
    line: dict = {"messages": [*messages, answer]}
    if request.get("tools"):
        line["tools"] = request["tools"]
    return line
