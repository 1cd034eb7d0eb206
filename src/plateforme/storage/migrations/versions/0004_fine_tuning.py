"""fine-tuning jobs, their events and checkpoints, fine-tuned models

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "fine_tuning_jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("created_by", sa.String(40)),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("status", sa.String(30), nullable=False, index=True),
        sa.Column("auto_start", sa.Boolean(), nullable=False),
        sa.Column("suffix", sa.String(40)),
        sa.Column("hyperparameters", sa.JSON(), nullable=False),
        sa.Column("training_files", sa.JSON(), nullable=False),
        sa.Column("validation_files", sa.JSON(), nullable=False),
        sa.Column("invalid_sample_skip_percentage", sa.Float(), nullable=False),
        sa.Column("job_metadata", sa.JSON()),
        sa.Column("trained_tokens", sa.BigInteger()),
        sa.Column("fine_tuned_model", sa.String(250)),
        _ts("created_at"),
        _ts("modified_at"),
    )
    op.create_index("ix_fine_tuning_jobs_created_at", "fine_tuning_jobs", ["created_at"])
    op.create_table(
        "fine_tuning_events",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(40), sa.ForeignKey("fine_tuning_jobs.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("data", sa.JSON()),
        _ts("created_at"),
    )
    op.create_table(
        "fine_tuning_checkpoints",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(40), sa.ForeignKey("fine_tuning_jobs.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("step_number", sa.Integer(), nullable=False),
        sa.Column("train_loss", sa.Float()),
        sa.Column("valid_loss", sa.Float()),
        sa.Column("valid_mean_token_accuracy", sa.Float()),
        _ts("created_at"),
    )
    op.create_table(
        "fine_tuned_models",
        sa.Column("id", sa.String(250), primary_key=True),
        sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("job_id", sa.String(40), nullable=False),
        sa.Column("root", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("description", sa.Text()),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("adapter_path", sa.String(500), nullable=False),
        _ts("created_at"),
    )


def downgrade() -> None:
    for table in ("fine_tuned_models", "fine_tuning_checkpoints", "fine_tuning_events", "fine_tuning_jobs"):
        op.drop_table(table)
