"""Conversation entries in Mistral's shape: their ids, timestamps, the inputs a client sends.

Every entry is a dict as the spec writes it (MessageInputEntry, MessageOutputEntry,
FunctionCallEntry, FunctionResultEntry, ToolExecutionEntry, AgentHandoffEntry), with
`object: "entry"`, its `type`, an `id` ("msg_", "fc_", "fr_", "tool_exec_", "handoff_" + hex) and
ISO-8601 `created_at` / `completed_at`. The store keeps them whole; the loop reads them back as
chat messages (conversations/messages.py).
"""

import secrets
from datetime import UTC, datetime

from plateforme.agents.errors import BadInput

PREFIXES = {"message.input": "msg", "message.output": "msg", "function.call": "fc", "function.result": "fr",
            "tool.execution": "tool_exec", "agent.handoff": "handoff"}
OUTPUT_TYPES = ("message.output", "tool.execution", "function.call", "agent.handoff")
MESSAGE_TYPES = ("message.input", "message.output")

# The fields each input entry type may carry (the spec's schemas; additionalProperties false).
_COMMON = ("object", "type", "created_at", "completed_at", "id")
_FIELDS = {
    "message.input": (*_COMMON, "role", "content", "prefix"),
    "message.output": (*_COMMON, "agent_id", "model", "role", "content"),
    "function.result": (*_COMMON, "tool_call_id", "result"),
    "function.call": (*_COMMON, "agent_id", "model", "tool_call_id", "name", "arguments", "confirmation_status"),
    "tool.execution": (*_COMMON, "agent_id", "model", "name", "arguments", "info"),
    "agent.handoff": (*_COMMON, "previous_agent_id", "previous_agent_name", "next_agent_id", "next_agent_name"),
}
_REQUIRED = {
    "message.input": ("content",),
    "message.output": ("content",),
    "function.result": ("tool_call_id", "result"),
    "function.call": ("tool_call_id", "name", "arguments"),
    "tool.execution": ("name", "arguments"),
    "agent.handoff": ("previous_agent_id", "previous_agent_name", "next_agent_id", "next_agent_name"),
}


def new_entry_id(entry_type: str) -> str:
    return f"{PREFIXES[entry_type]}_{secrets.token_hex(16)}"


def now_iso() -> str:
    """Now, as the spec's date-time strings (ISO 8601, UTC, with its offset)."""
    return datetime.now(UTC).isoformat()


def new_entry(entry_type: str, **fields) -> dict:
    """A complete entry of `entry_type` made now: object, type, id, created_at and completed_at, then `fields`."""
    moment = now_iso()
    return {"object": "entry", "type": entry_type, "created_at": moment, "completed_at": moment,
            "id": new_entry_id(entry_type), **fields}


def _as_dict(item, param: str) -> dict:
    if hasattr(item, "model_dump"):  # a pydantic model of the route's schema
        item = item.model_dump(exclude_none=True)
    if not isinstance(item, dict):
        raise BadInput(f"{param}: expected an entry object (e.g. {{\"type\": \"message.input\", \"role\": "
                       f"\"user\", \"content\": \"...\"}}), got {type(item).__name__}", param)
    return item


def _input_entry(raw, param: str) -> dict:
    item = dict(_as_dict(raw, param))
    entry_type = item.get("type") or ("message.input" if "role" in item else None)
    if entry_type not in _FIELDS:
        raise BadInput(f"{param}.type: {entry_type!r} is not an entry type; use one of "
                       + ", ".join(_FIELDS), f"{param}.type")
    unknown = sorted(set(item) - set(_FIELDS[entry_type]))
    if unknown:
        raise BadInput(f"{param}.{unknown[0]}: not a field of a {entry_type} entry", f"{param}.{unknown[0]}")
    for name in _REQUIRED[entry_type]:
        if item.get(name) is None:
            raise BadInput(f"{param}.{name}: a {entry_type} entry needs it", f"{param}.{name}")
    if entry_type == "message.input":
        item.setdefault("role", "user")
        if item["role"] not in ("user", "assistant"):
            raise BadInput(f"{param}.role: {item['role']!r}; an input message is from the user or the assistant",
                           f"{param}.role")
        _check_content(item["content"], f"{param}.content")
    if entry_type == "message.output":
        item["role"] = "assistant"
    if entry_type == "function.result" and not isinstance(item["result"], str):
        raise BadInput(f"{param}.result: the function's result is a string (JSON text for structured results)",
                       f"{param}.result")
    moment = now_iso()  # an input's id and times are the server's: when it was received
    item.update(object="entry", type=entry_type, id=new_entry_id(entry_type), created_at=moment, completed_at=moment)
    return item


def _check_content(content, param: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list) or not all(isinstance(c, dict) and c.get("type") for c in content):
        raise BadInput(f"{param}: a string, or a list of content chunks ({{\"type\": \"text\", \"text\": ...}})",
                       param)


def input_entries(inputs, param: str = "inputs") -> list[dict]:
    """The stored entries of a request's `inputs`: a string (one user message) or a list of entries
    (dicts or the route's pydantic models). Each gets a new id and timestamps; a mistake is a
    BadInput naming the field (e.g. "inputs.1.tool_call_id")."""
    if isinstance(inputs, str):
        if not inputs:
            raise BadInput(f"{param}: empty; send the user's message, or a list of entries", param)
        return [new_entry("message.input", role="user", content=inputs, prefix=False)]
    if not isinstance(inputs, list) or not inputs:
        raise BadInput(f"{param}: send the user's message (a string) or a non-empty list of entries", param)
    return [_input_entry(item, f"{param}.{i}") for i, item in enumerate(inputs)]


def messages_view(entries: list[dict]) -> list[dict]:
    """The message entries of a conversation (GET /v1/conversations/{id}/messages)."""
    return [e for e in entries if e.get("type") in MESSAGE_TYPES]


def text_of(content) -> str:
    """The text of a message's content: the string, or its text chunks joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(c.get("text") or "" for c in content if isinstance(c, dict) and c.get("type") == "text")
