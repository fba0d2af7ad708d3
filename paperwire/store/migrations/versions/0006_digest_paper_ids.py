"""The papers a digest carried move onto its digest_sends row: one row per digest instead of one per
paper (at 27 papers a digest, the per-paper rows were most of the digest sender's write cost).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("digest_sends") as batch:
        batch.add_column(sa.Column("paper_ids", sa.Text, nullable=True))
    # Carry over what was sent (nothing, on instances that never sent a digest), one digest row each.
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT subscriber_id, paper_id FROM digest_papers")).all()
    by_subscriber: dict[int, list[str]] = {}
    for subscriber_id, paper_id in rows:
        by_subscriber.setdefault(subscriber_id, []).append(paper_id)
    for subscriber_id, ids in by_subscriber.items():
        conn.execute(
            sa.text(
                "UPDATE digest_sends SET paper_ids = :ids WHERE id = "
                "(SELECT max(id) FROM digest_sends WHERE subscriber_id = :sid)"
            ),
            {"ids": " ".join(ids), "sid": subscriber_id},
        )
    op.drop_table("digest_papers")


def downgrade() -> None:
    op.create_table(
        "digest_papers",
        sa.Column(
            "subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("paper_id", sa.String(64), sa.ForeignKey("papers.id"), primary_key=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("digest_sends") as batch:
        batch.drop_column("paper_ids")
