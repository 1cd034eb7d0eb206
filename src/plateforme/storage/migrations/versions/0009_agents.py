"""agents (versions, aliases), conversations and their entries, connectors (databases, MCP servers)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _workspace() -> sa.Column:
    return sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
                     nullable=False)


def _times() -> list[sa.Column]:
    return [sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False)]


def upgrade() -> None:
    op.create_table("agents", sa.Column("id", sa.String(40), primary_key=True), _workspace(),
                    sa.Column("version", sa.Integer(), nullable=False),
                    sa.Column("latest_version", sa.Integer(), nullable=False), *_times())
    op.create_index("ix_agents_workspace_id", "agents", ["workspace_id"])
    op.create_table("agent_versions",
                    sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id", ondelete="CASCADE"),
                              primary_key=True),
                    sa.Column("version", sa.Integer(), primary_key=True),
                    sa.Column("body", sa.JSON(), nullable=False),
                    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False))
    op.create_table("agent_aliases",
                    sa.Column("agent_id", sa.String(40), sa.ForeignKey("agents.id", ondelete="CASCADE"),
                              primary_key=True),
                    sa.Column("alias", sa.String(100), primary_key=True),
                    sa.Column("version", sa.Integer(), nullable=False), *_times())
    op.create_table("conversations", sa.Column("id", sa.String(40), primary_key=True), _workspace(),
                    sa.Column("agent_id", sa.String(40)), sa.Column("agent_version", sa.JSON()),
                    sa.Column("active_agent_id", sa.String(40)), sa.Column("model", sa.String(200)),
                    sa.Column("instructions", sa.Text()), sa.Column("tools", sa.JSON()),
                    sa.Column("completion_args", sa.JSON()), sa.Column("guardrails", sa.JSON()),
                    sa.Column("name", sa.String(300)), sa.Column("description", sa.Text()),
                    sa.Column("metadata", sa.JSON()), sa.Column("status", sa.String(20), nullable=False),
                    sa.Column("runner", sa.String(80)),
                    sa.Column("lease_until", sa.DateTime(timezone=True)),
                    sa.Column("error", sa.Text()), *_times())
    op.create_index("ix_conversations_status", "conversations", ["status", "lease_until"])
    op.create_index("ix_conversations_workspace_created", "conversations", ["workspace_id", "created_at"])
    op.create_table("conversation_entries", sa.Column("id", sa.String(60), primary_key=True),
                    sa.Column("conversation_id", sa.String(40),
                              sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
                    sa.Column("position", sa.Integer(), nullable=False),
                    sa.Column("type", sa.String(40), nullable=False),
                    sa.Column("body", sa.JSON(), nullable=False),
                    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
                    sa.UniqueConstraint("conversation_id", "position"))
    op.create_index("ix_conversation_entries_conversation_id", "conversation_entries", ["conversation_id"])
    op.create_table("connectors", sa.Column("id", sa.String(40), primary_key=True), _workspace(),
                    sa.Column("name", sa.String(64), nullable=False),
                    sa.Column("kind", sa.String(20), nullable=False),
                    sa.Column("description", sa.Text()),
                    sa.Column("config", sa.JSON(), nullable=False), *_times(),
                    sa.UniqueConstraint("workspace_id", "name"))
    op.create_index("ix_connectors_workspace_id", "connectors", ["workspace_id"])


def downgrade() -> None:
    op.drop_table("connectors")
    op.drop_table("conversation_entries")
    op.drop_table("conversations")
    op.drop_table("agent_aliases")
    op.drop_table("agent_versions")
    op.drop_table("agents")
