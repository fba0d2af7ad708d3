"""E-mail digest subscriptions: subscribers, their topics, digest sends and the papers they carried.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("frequency", sa.String(16), nullable=False, server_default="daily"),
        sa.Column("hour", sa.Integer, nullable=False, server_default="8"),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("size", sa.Integer, nullable=False, server_default="10"),
        sa.Column("weekends", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("empty_note", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("token_version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("last_confirmation_sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_subscribers_user_id", "subscribers", ["user_id"])
    op.create_index("ix_subscribers_status", "subscribers", ["status"])
    op.create_table(
        "subscriber_topics",
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(300), primary_key=True),
    )
    op.create_table(
        "digest_sends",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outbox_key", sa.String(200), nullable=True),
        sa.UniqueConstraint("subscriber_id", "period", name="uq_digest_sends_subscriber_period"),
    )
    op.create_table(
        "digest_papers",
        sa.Column(
            "subscriber_id",
            sa.Integer,
            sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("paper_id", sa.String(64), sa.ForeignKey("papers.id"), primary_key=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("digest_papers", "digest_sends", "subscriber_topics"):
        op.drop_table(table)
    op.drop_index("ix_subscribers_status", "subscribers")
    op.drop_index("ix_subscribers_user_id", "subscribers")
    op.drop_table("subscribers")
