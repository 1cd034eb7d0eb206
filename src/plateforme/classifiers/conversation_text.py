"""A conversation as the one text a classifier head reads: the same rendering when training data
has `messages` and when POST /v1/chat/classifications classifies a conversation.

    conversation_text([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}])
    # 'user: Hi\\nassistant: Hello!'

One line per turn, `role: content`, in order. A content given as chunks keeps its text chunks
(joined by a space); an assistant turn with only tool calls reads `assistant: [tool call: name]`,
so the head still sees that a tool was called. Pure Python: the trainer and the gateway import it.
"""

ROLES = ("system", "user", "assistant", "tool")


class ConversationInvalid(ValueError):
    """The conversation cannot be rendered; the message names the turn and what is wrong."""


def _content_text(content, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for i, chunk in enumerate(content):
            if isinstance(chunk, str):
                parts.append(chunk)
            elif isinstance(chunk, dict) and chunk.get("type", "text") == "text" and isinstance(chunk.get("text"), str):
                parts.append(chunk["text"])
            elif isinstance(chunk, dict) and isinstance(chunk.get("type"), str):
                continue  # images, documents...: a text classifier reads only the text
            else:
                raise ConversationInvalid(f"{where}.content[{i}] must be a text chunk "
                                          '({"type": "text", "text": "..."})')
        return " ".join(p for p in parts if p)
    raise ConversationInvalid(f"{where}.content must be a string or a list of chunks")


def _tool_calls(message: dict) -> str:
    names = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return " ".join(f"[tool call: {name}]" for name in names)


def conversation_text(messages) -> str:
    """The text of `messages` ([{"role", "content"}...]); ConversationInvalid when it has no turn,
    a turn without a known role, or no text at all."""
    if not isinstance(messages, list) or not messages:
        raise ConversationInvalid("messages must be a non-empty list of {role, content} turns")
    lines = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise ConversationInvalid(f"{where} must be an object with a role and a content")
        role = message.get("role")
        if role not in ROLES:
            raise ConversationInvalid(f"{where}.role must be one of {', '.join(ROLES)}, got {role!r}")
        text = _content_text(message.get("content"), where).strip()
        calls = _tool_calls(message) if role == "assistant" else ""
        text = " ".join(p for p in (text, calls) if p)
        if text:
            lines.append(f"{role}: {text}")
    if not lines:
        raise ConversationInvalid("the conversation has no text to classify: every turn is empty")
    return "\n".join(lines)
