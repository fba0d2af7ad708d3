"""Papers, sequences and sync state.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "papers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("abstract", sa.Text, nullable=False, server_default=""),
        sa.Column("authors", sa.Text, nullable=False, server_default="[]"),
        sa.Column("categories", sa.Text, nullable=False, server_default=""),
        sa.Column("primary_category", sa.String(64), nullable=True),
        sa.Column("published", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=True),
        sa.Column("metadata_date", sa.String(10), nullable=True),
        sa.Column("comments", sa.Text, nullable=True),
        sa.Column("journal_ref", sa.Text, nullable=True),
        sa.Column("doi", sa.Text, nullable=True),
        sa.Column("report_no", sa.Text, nullable=True),
        sa.Column("license", sa.Text, nullable=True),
        sa.Column("source", sa.String(32), nullable=False, server_default=""),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("content_hash", sa.String(32), nullable=False),
        sa.Column("change_seq", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("change_seq", name="uq_papers_change_seq"),
    )
    op.create_index("ix_papers_primary_category", "papers", ["primary_category"])
    op.create_index("ix_papers_published", "papers", ["published"])
    sequences = op.create_table(
        "sequences",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(sequences, [{"name": "papers", "value": 0}])
    op.create_table(
        "sync_state",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_state")
    op.drop_table("sequences")
    op.drop_table("papers")
