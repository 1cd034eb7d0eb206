"""several gateway replicas on one database: shared rate-limit counters, fine-tuning job leases

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_counters",
        sa.Column("scope", sa.String(80), primary_key=True),
        sa.Column("window_no", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("prev_requests", sa.Integer(), nullable=False),
        sa.Column("prev_tokens", sa.BigInteger(), nullable=False),
    )
    with op.batch_alter_table("fine_tuning_jobs") as batch_op:
        # The runner (gateway data dir) working on an active job, and until when its claim holds.
        batch_op.add_column(sa.Column("runner_id", sa.String(64)))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("fine_tuning_jobs") as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("runner_id")
    op.drop_table("rate_counters")
