"""classifier fine-tuning: job types and targets, per-target checkpoint metrics, classifier models

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fine_tuning_jobs") as batch_op:
        batch_op.add_column(sa.Column("job_type", sa.String(20), nullable=False, server_default="completion"))
        batch_op.add_column(sa.Column("classifier_targets", sa.JSON()))
    with op.batch_alter_table("fine_tuning_checkpoints") as batch_op:
        batch_op.add_column(sa.Column("metrics", sa.JSON()))
    with op.batch_alter_table("fine_tuned_models") as batch_op:
        batch_op.add_column(sa.Column("model_type", sa.String(20), nullable=False, server_default="completion"))
        batch_op.add_column(sa.Column("classifier_targets", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("fine_tuned_models") as batch_op:
        batch_op.drop_column("classifier_targets")
        batch_op.drop_column("model_type")
    with op.batch_alter_table("fine_tuning_checkpoints") as batch_op:
        batch_op.drop_column("metrics")
    with op.batch_alter_table("fine_tuning_jobs") as batch_op:
        batch_op.drop_column("classifier_targets")
        batch_op.drop_column("job_type")
