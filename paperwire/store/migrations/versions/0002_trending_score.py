"""Trending score per paper (0 until votes exist); the search sort "trending" reads it.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("papers") as batch:
        batch.add_column(sa.Column("trending_score", sa.Float, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("papers") as batch:
        batch.drop_column("trending_score")
