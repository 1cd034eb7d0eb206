"""Traces of chat completions (captured only in workspaces that opted in) and their feedback."""

from datetime import datetime

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, SmallInteger, String, Text,
                        UniqueConstraint, false)
from sqlalchemy.orm import Mapped, mapped_column

from plateforme.storage.tables import Base


class ChatTrace(Base):
    """One chat completion: the request as sent and the final answer; the latest feedback on it."""

    __tablename__ = "chat_traces"
    __table_args__ = (UniqueConstraint("workspace_id", "completion_id", name="uq_chat_traces_workspace_completion"),
                      Index("ix_chat_traces_workspace_created", "workspace_id", "created_at"))
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    completion_id: Mapped[str] = mapped_column(String(100))
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(200))
    stream: Mapped[bool] = mapped_column(Boolean)
    request: Mapped[dict] = mapped_column(JSON)  # the chat completion request body, as sent
    # {"id", "object", "model", "created", "choices": [{"index", "message", "finish_reason"}], "usage"}
    response: Mapped[dict] = mapped_column(JSON)
    # Refused by a guard (guardrails): `response` is then the refusal (and what was withheld).
    blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # What the request's guardrails checked and found (the response's `guardrails`), or None.
    guardrails: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rating: Mapped[int | None] = mapped_column(SmallInteger)  # 1 | -1
    corrected_answer: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    feedback_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
