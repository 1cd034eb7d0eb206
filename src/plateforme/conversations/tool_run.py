"""A tool call of the model, as entries and events: a platform tool run, or a call for the client.

A platform tool is run by the platform (tool.execution.started, its run, tool.execution.done, a
ToolExecutionEntry whose info keeps what the model read: `content`, `tool_call_id`, `function`).
A client function, a client-side handoff, or a platform tool that needs the client's
confirmation becomes a FunctionCallEntry (function.call.delta event) the client answers.
"""

import asyncio
import json
import logging
import time

from plateforme.agent_tools.base import PlatformTool, ToolContext, ToolOutcome
from plateforme.chat.tool_ids import new_tool_call_id
from plateforme.conversations.entries import new_entry, new_entry_id, now_iso
from plateforme.conversations.messages import CALL_ID, CONTENT, FUNCTION, arguments_text

log = logging.getLogger("plateforme.conversations")

DENIED = "The user denied this call of {name}: it was not run. Do not call it again; answer without it."


def call_parts(call: dict) -> tuple[str, str, str]:
    """(tool_call_id, function name, arguments as JSON text) of a model's tool call."""
    function = call.get("function") or {}
    return call.get("id") or new_tool_call_id(), function.get("name") or "", \
        arguments_text(function.get("arguments") or "{}")


def _arguments(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def function_call(persona, call_id: str, name: str, arguments: str, output_index: int,
                  confirmation: str | None = None) -> tuple[dict, dict]:
    """(function.call.delta event, FunctionCallEntry) of a call the client answers or confirms."""
    entry = new_entry("function.call", agent_id=persona.agent_id, model=persona.model, tool_call_id=call_id,
                      name=name, arguments=arguments, confirmation_status=confirmation)
    event = {"type": "function.call.delta", "created_at": entry["created_at"], "output_index": output_index,
             "id": entry["id"], "model": persona.model, "agent_id": persona.agent_id, "name": name,
             "tool_call_id": call_id, "arguments": arguments, "confirmation_status": confirmation}
    return event, entry


def execution_entry(persona, entry_id: str, name: str, arguments: str, info: dict, started_at: str) -> dict:
    return {"object": "entry", "type": "tool.execution", "created_at": started_at, "completed_at": now_iso(),
            "id": entry_id, "agent_id": persona.agent_id, "model": persona.model, "name": name,
            "arguments": arguments, "info": info}


def outcome_info(outcome: ToolOutcome, call_id: str, function: str) -> dict:
    info = dict(outcome.info or {})
    if outcome.error is not None:
        info.setdefault("error", outcome.error)
    info.update({CONTENT: outcome.content, CALL_ID: call_id, FUNCTION: function})
    return info


async def run_tool(tool: PlatformTool, arguments: str, context: ToolContext) -> ToolOutcome:
    """The tool's outcome; arguments that are not a JSON object, a tool that raises or outlives
    the deadline: an outcome with the error (the model reads it and the conversation goes on)."""
    args = _arguments(arguments)
    if args is None:
        reason = f"the arguments of {tool.name} must be a JSON object, got {arguments[:200]!r}"
        return ToolOutcome(content=f"Error: {reason}", info={"error": reason}, error=reason)
    remaining = context.deadline - time.monotonic()
    try:
        async with asyncio.timeout(max(remaining, 0)):
            return await tool.run(args, context)
    except TimeoutError:
        reason = f"{tool.entry_name} did not answer before the response's time bound (PLATEFORME_AGENT_MAX_SECONDS)"
    except Exception as exc:  # a tool must not raise; if one does, the model reads why
        log.exception("platform tool %s raised", tool.entry_name)
        reason = f"{tool.entry_name} failed: {type(exc).__name__}: {exc}"
    return ToolOutcome(content=f"Error: {reason}", info={"error": reason}, error=reason)


def started_event(persona, entry_id: str, name: str, arguments: str, output_index: int) -> dict:
    return {"type": "tool.execution.started", "created_at": now_iso(), "output_index": output_index,
            "id": entry_id, "model": persona.model, "agent_id": persona.agent_id, "name": name,
            "arguments": arguments}


def done_event(entry_id: str, name: str, info: dict, output_index: int) -> dict:
    return {"type": "tool.execution.done", "created_at": now_iso(), "output_index": output_index,
            "id": entry_id, "name": name, "info": info}


def denied_entry(persona, tool_name: str, entry_name: str, call_id: str, arguments: str) -> dict:
    content = DENIED.format(name=tool_name)
    info = {"error": "denied by the user (tool_confirmations)", "confirmation": "denied",
            CONTENT: content, CALL_ID: call_id, FUNCTION: tool_name}
    return execution_entry(persona, new_entry_id("tool.execution"), entry_name, arguments, info, now_iso())
