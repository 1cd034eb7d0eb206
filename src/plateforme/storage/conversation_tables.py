"""Tables of conversations and their entries (Mistral's conversation entries, in order).

An entry is kept whole as JSON in Mistral's shape (MessageInputEntry, MessageOutputEntry,
FunctionCallEntry, FunctionResultEntry, ToolExecutionEntry, AgentHandoffEntry), with its
type and position beside it for queries.
"""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plateforme.storage.tables import Base


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_status", "status", "lease_until"),
                      Index("ix_conversations_workspace_created", "workspace_id", "created_at"))
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "conv_" + 32 hex
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    # With an agent: the agent and the version asked for (an int, an alias, or None: the
    # agent's current version), and the agent now answering (after a server-side handoff).
    agent_id: Mapped[str | None] = mapped_column(String(40))
    agent_version: Mapped[str | int | None] = mapped_column(JSON)
    active_agent_id: Mapped[str | None] = mapped_column(String(40))
    # With a bare model: its settings (Mistral's ModelConversation fields).
    model: Mapped[str | None] = mapped_column(String(200))
    instructions: Mapped[str | None] = mapped_column(Text)
    tools: Mapped[list | None] = mapped_column(JSON)
    completion_args: Mapped[dict | None] = mapped_column(JSON)
    guardrails: Mapped[list | None] = mapped_column(JSON)
    name: Mapped[str | None] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict | None] = mapped_column("metadata", JSON)
    # idle: ready for an append; running: a response is being made (by `runner`, whose lease
    # runs until lease_until); waiting: paused on function results or tool confirmations;
    # failed: a response was cut off (the platform stopped midway) or failed (`error`).
    status: Mapped[str] = mapped_column(String(20), default="idle")
    runner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConversationEntry(Base):
    __tablename__ = "conversation_entries"
    __table_args__ = (UniqueConstraint("conversation_id", "position"),)
    id: Mapped[str] = mapped_column(String(60), primary_key=True)  # the entry's id ("msg_...", "fc_"...)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40))  # message.input, message.output, function.call, ...
    body: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
