"""Name each tool result after the function call it answers.

Mistral's and OpenAI's protocols make a tool message's `name` optional: the `tool_call_id` says
which call it answers. The prompt, though, shows the model "the result of <function>", so a tool
message without a name takes the function name of the earlier assistant call with its id (or,
with no id either, of the first call of the latest assistant turn not answered yet).
"""


def named_tool_results(messages: list[dict]) -> list[dict]:
    """`messages` with `name` set on every tool message whose call can be found; others unchanged."""
    names: dict[str, str] = {}
    unanswered: list[tuple[str | None, str]] = []  # (id, name) of the latest turn's calls, in order
    out = []
    for message in messages:
        if message["role"] == "assistant" and message.get("tool_calls"):
            unanswered = []
            for call in message["tool_calls"]:
                name = (call.get("function") or {}).get("name")
                if not name:
                    continue
                if call.get("id"):
                    names[call["id"]] = name
                unanswered.append((call.get("id"), name))
        elif message["role"] == "tool":
            call_id = message.get("tool_call_id")
            answered = next((i for i, (cid, _) in enumerate(unanswered) if cid == call_id), None) \
                if call_id else (0 if unanswered else None)
            name = names.get(call_id) if call_id else (unanswered[0][1] if unanswered else None)
            if answered is not None:
                unanswered.pop(answered)
            if not message.get("name") and name:
                message = {**message, "name": name}
        out.append(message)
    return out
