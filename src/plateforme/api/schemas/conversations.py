"""The Conversations API's requests and answers, as in Mistral's spec.

Requests: ConversationRequest (start), ConversationAppendRequest, ConversationRestartRequest (one
schema each for the streamed and the JSON form: `stream` tells them apart). Input entries are
checked by conversations/entries.py (a 400 naming e.g. `inputs.1.tool_call_id`), so they are
plain objects here. Answers are Mistral's dicts: ConversationResponse, ModelConversation /
AgentConversation, ConversationHistory, ConversationMessages.
"""

from typing import Any, Literal

from pydantic import Field

from plateforme.api.schemas.agent_tools import AgentTool, CompletionArgs, tools_as_dicts
from plateforme.api.schemas.chat_messages import Strict

Inputs = str | list[dict[str, Any]]
Version = int | str


class ToolCallConfirmation(Strict):
    tool_call_id: str = Field(min_length=1)
    confirmation: Literal["allow", "deny"]


class ConversationRequest(Strict):
    inputs: Inputs
    stream: bool | None = None
    store: bool | None = None
    handoff_execution: Literal["client", "server"] | None = None
    instructions: str | None = None
    tools: list[AgentTool] | None = None
    completion_args: CompletionArgs | None = None
    # Mistral's GuardrailConfig list, parsed by guardrails.config.parse_guardrails (a 400 naming the field).
    guardrails: list[Any] | None = None
    name: str | None = Field(default=None, max_length=300)
    description: str | None = None
    metadata: dict[str, Any] | None = None
    agent_id: str | None = None
    agent_version: Version | None = None
    model: str | None = None

    def settings(self) -> dict:
        """The conversation's stored fields (conversations/store.FIELDS) this request sets."""
        return {"agent_id": self.agent_id, "agent_version": self.agent_version, "model": self.model,
                "instructions": self.instructions, "tools": tools_as_dicts(self.tools),
                "completion_args": args_dict(self.completion_args), "guardrails": self.guardrails,
                "name": self.name, "description": self.description, "metadata": self.metadata}


class ConversationAppendRequest(Strict):
    inputs: Inputs | None = None
    stream: bool = False
    store: bool = True
    handoff_execution: Literal["client", "server"] = "server"
    completion_args: CompletionArgs | None = None
    tool_confirmations: list[ToolCallConfirmation] | None = None


class ConversationRestartRequest(Strict):
    inputs: Inputs | None = None
    stream: bool = False
    store: bool = True
    handoff_execution: Literal["client", "server"] = "server"
    completion_args: CompletionArgs | None = None
    guardrails: list[Any] | None = None
    metadata: dict[str, Any] | None = None
    from_entry_id: str = Field(min_length=1)
    agent_version: Version | None = None


def args_dict(args: CompletionArgs | None) -> dict | None:
    """The completion arguments the client set (unset ones left to the agent's or the conversation's)."""
    return None if args is None else args.model_dump(exclude_unset=True, exclude_none=True, by_alias=True)


def confirmations(items: list[ToolCallConfirmation] | None) -> list[dict] | None:
    return None if items is None else [c.model_dump() for c in items]


def conversation_view(record) -> dict:
    """ModelConversation or AgentConversation of a conversations.store.ConversationRecord."""
    common = {"object": "conversation", "id": record.id, "created_at": record.created_at.isoformat(),
              "updated_at": record.updated_at.isoformat(), "name": record.name,
              "description": record.description, "metadata": record.metadata}
    if record.agent_id is not None:
        return {**common, "agent_id": record.agent_id, "agent_version": record.agent_version}
    return {**common, "model": record.model, "instructions": record.instructions, "tools": record.tools or [],
            "completion_args": record.completion_args or {}, "guardrails": record.guardrails}


def history_view(conversation_id: str, entries: list[dict]) -> dict:
    return {"object": "conversation.history", "conversation_id": conversation_id, "entries": entries}


def messages_view(conversation_id: str, messages: list[dict]) -> dict:
    return {"object": "conversation.messages", "conversation_id": conversation_id, "messages": messages}
