"""The digest sender's progress on each subscriber row (the last period composed and when), and which
process holds an outbox row it is sending (so a rerun after a crash takes it back at once).

Keeping it on the subscriber row (not only in digest_sends) is what makes concurrent senders safe on
PostgreSQL: a sender locks subscriber rows (FOR UPDATE SKIP LOCKED) and updates this column in the same
transaction, so a second sender that read the row before the commit re-checks it and skips it.

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
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("last_digest_period", sa.String(32), nullable=True))
        batch.add_column(sa.Column("last_digest_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_digest_sends_subscriber", "digest_sends", ["subscriber_id", "claimed_at"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_by")
    op.drop_index("ix_digest_sends_subscriber", "digest_sends")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("last_digest_at")
        batch.drop_column("last_digest_period")
