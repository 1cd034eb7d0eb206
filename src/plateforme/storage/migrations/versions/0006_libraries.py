"""document libraries: libraries, sharing, documents and their chunks

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "libraries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("workspace_id", sa.String(40), sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("owner_type", sa.String(20), nullable=False),
        sa.Column("owner_id", sa.String(40)),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("chunk_size", sa.Integer()),
        sa.Column("embedding_model", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "library_shares",
        sa.Column("library_id", sa.String(40), sa.ForeignKey("libraries.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("share_with_type", sa.String(20), primary_key=True),
        sa.Column("share_with_uuid", sa.String(40), primary_key=True, index=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "library_documents",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("library_id", sa.String(40), sa.ForeignKey("libraries.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("mime_type", sa.String(200)),
        sa.Column("extension", sa.String(20)),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, index=True),
        sa.Column("blob_key", sa.String(300), nullable=False),
        sa.Column("text_blob_key", sa.String(300)),
        sa.Column("page_offsets", sa.JSON()),
        sa.Column("number_of_pages", sa.Integer()),
        sa.Column("ocr_pages", sa.JSON()),
        sa.Column("summary", sa.Text()),
        sa.Column("attributes", sa.JSON()),
        sa.Column("uploaded_by_id", sa.String(40)),
        sa.Column("uploaded_by_type", sa.String(20), nullable=False),
        sa.Column("process_status", sa.String(30), nullable=False),
        sa.Column("process_error", sa.Text()),
        sa.Column("tokens_processing_total", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("runner_id", sa.String(64)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("last_processed_at", sa.DateTime(timezone=True)),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_library_documents_status", "library_documents", ["process_status", "lease_until"])
    op.create_table(
        "document_chunks",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("document_id", sa.String(40), sa.ForeignKey("library_documents.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("library_id", sa.String(40), nullable=False, index=True),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("heading", sa.Text()),
        sa.Column("text", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("document_chunks")
    op.drop_index("ix_library_documents_status", "library_documents")
    op.drop_table("library_documents")
    op.drop_table("library_shares")
    op.drop_table("libraries")
