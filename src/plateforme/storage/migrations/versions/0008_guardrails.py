"""guardrails: requests recorded as blocked in usage and traces, the tokens their checks read

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage") as batch_op:
        batch_op.add_column(sa.Column("blocked", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("guardrail_tokens", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("chat_traces") as batch_op:
        batch_op.add_column(sa.Column("blocked", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("guardrails", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("chat_traces") as batch_op:
        batch_op.drop_column("guardrails")
        batch_op.drop_column("blocked")
    with op.batch_alter_table("usage") as batch_op:
        batch_op.drop_column("guardrail_tokens")
        batch_op.drop_column("blocked")
