"""opt-in chat completion traces and their feedback; the per-workspace capture switch

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch_op:
        batch_op.add_column(sa.Column("capture_traces", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_table(
        "chat_traces",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("completion_id", sa.String(100), nullable=False),
        sa.Column("api_key_id", sa.String(40)),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rating", sa.SmallInteger()),
        sa.Column("corrected_answer", sa.Text()),
        sa.Column("comment", sa.Text()),
        sa.Column("feedback_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("workspace_id", "completion_id", name="uq_chat_traces_workspace_completion"),
    )
    op.create_index("ix_chat_traces_workspace_created", "chat_traces", ["workspace_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_chat_traces_workspace_created", table_name="chat_traces")
    op.drop_table("chat_traces")
    with op.batch_alter_table("workspaces") as batch_op:
        batch_op.drop_column("capture_traces")
