"""Conversation checks the engine would not make: answered with a 400 that says what is wrong."""

from plateforme.chat.errors import InvalidChatRequest


def check_messages(messages: list[dict], prefix: bool) -> None:
    called: set[str] = set()
    for i, message in enumerate(messages):
        role = message["role"]
        if role == "assistant":
            for call in message.get("tool_calls") or []:
                if call.get("id"):
                    called.add(call["id"])
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if call_id and call_id not in called:
                raise InvalidChatRequest(
                    f"messages.{i}: tool message answers tool_call_id {call_id!r}, but no earlier "
                    "assistant message made a tool call with that id", param=f"messages.{i}")
            if not call_id and not called:
                raise InvalidChatRequest(
                    f"messages.{i}: tool message without a preceding assistant tool call",
                    param=f"messages.{i}")
    if prefix and messages[-1]["role"] != "assistant":
        raise InvalidChatRequest("prefix: the message with prefix=true must be the last one",
                                 param=f"messages.{len(messages) - 1}")
