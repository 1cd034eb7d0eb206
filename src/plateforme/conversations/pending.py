"""What a conversation waits for before its next response: the results of the client's function
calls, the confirmations of the tool calls that need one; a request's answers to them, checked.

A function.call entry waits until a function.result (a client function, a client-side handoff)
or a tool.execution entry (a confirmed or denied platform tool: its info's tool_call_id) answers
its tool_call_id. One whose confirmation_status is "pending" waits for tool_confirmations.
"""

from plateforme.agents.errors import BadInput
from plateforme.conversations.messages import pending_calls

__all__ = ["check_confirmations", "check_results", "pending_calls"]


def _dict(value) -> dict:
    return value.model_dump() if hasattr(value, "model_dump") else dict(value)


def _waits_for(calls: dict[str, dict]) -> str:
    return ", ".join(f"{cid} ({entry['name']})" for cid, entry in calls.items())


def check_results(inputs: list[dict], pending: dict[str, dict]) -> None:
    """Every function.result of `inputs` answers a client call the conversation waits for, and
    every such call is answered: else a BadInput naming the field."""
    awaiting = {cid: e for cid, e in pending.items() if e.get("confirmation_status") != "pending"}
    for i, entry in enumerate(inputs):
        if entry["type"] == "function.call":
            awaiting[entry["tool_call_id"]] = entry
        elif entry["type"] == "function.result":
            call_id, param = entry["tool_call_id"], f"inputs.{i}.tool_call_id"
            if call_id in pending and call_id not in awaiting:
                raise BadInput(f"{param}: call {call_id!r} of {pending[call_id]['name']} waits for a confirmation, "
                               "not a result: append tool_confirmations [{\"tool_call_id\": ..., \"confirmation\": "
                               "\"allow\" | \"deny\"}]", param)
            if call_id not in awaiting:
                waits = f"; it waits for {_waits_for(awaiting)}" if awaiting else "; it waits for none"
                raise BadInput(f"{param}: {call_id!r} answers no function call of this conversation{waits}", param)
            awaiting.pop(call_id)
    if awaiting:
        raise BadInput(f"inputs: the conversation waits for the results of the function calls {_waits_for(awaiting)}"
                       ": append a function.result entry for each", "inputs")


def check_confirmations(confirmations: list | None, pending: dict[str, dict]) -> list[tuple[dict, str]]:
    """The (pending call, "allow" | "deny") pairs of `confirmations`; a BadInput naming the field
    for one that answers no pending confirmation, or when a pending confirmation is left unanswered."""
    waiting = {cid: e for cid, e in pending.items() if e.get("confirmation_status") == "pending"}
    answers: dict[str, str] = {}
    for i, raw in enumerate(confirmations or []):
        item, param = _dict(raw), f"tool_confirmations.{i}"
        call_id, choice = item.get("tool_call_id"), item.get("confirmation")
        if choice not in ("allow", "deny"):
            raise BadInput(f"{param}.confirmation: {choice!r}; allow or deny", f"{param}.confirmation")
        if call_id not in waiting or call_id in answers:
            waits = f"; it waits for {_waits_for(waiting)}" if waiting else "; none is pending"
            raise BadInput(f"{param}.tool_call_id: {call_id!r} is no tool call waiting for a confirmation{waits}",
                           f"{param}.tool_call_id")
        answers[call_id] = choice
    missing = {cid: e for cid, e in waiting.items() if cid not in answers}
    if missing:
        raise BadInput(f"tool_confirmations: the conversation waits for the confirmation of {_waits_for(missing)}: "
                       "allow or deny each", "tool_confirmations")
    return [(waiting[cid], answers[cid]) for cid in waiting]
