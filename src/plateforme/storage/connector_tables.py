"""Connectors an admin registers for a workspace: database connections and MCP servers.

Agents use them as Mistral's `{"type": "connector", "connector_id": ...}` tools, by id or by
name, so both kinds share one table and one namespace per workspace. `config` is the kind's own
settings (connectors/database_config.py, connectors/mcp_config.py); secrets are never stored:
the config names the environment variables that hold them.
"""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plateforme.storage.tables import Base


class Connector(Base):
    __tablename__ = "connectors"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # a UUID
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))  # "database" | "mcp"
    description: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
