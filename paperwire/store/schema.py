"""Tables of the store, the source of truth. Alembic migrations in ``migrations/`` create them;
``tests/test_store.py`` checks that the two never drift apart."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

papers = Table(
    "papers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False, server_default=""),
    # JSON list of {"name", "affiliation"?} in author order; kept in the row because it is always read whole.
    Column("authors", Text, nullable=False, server_default="[]"),
    # Space-separated like arXiv's own field, primary category first.
    Column("categories", Text, nullable=False, server_default=""),
    Column("primary_category", String(64), nullable=True, index=True),
    Column("published", DateTime(timezone=True), nullable=True, index=True),
    Column("updated", DateTime(timezone=True), nullable=True),
    Column("metadata_date", String(10), nullable=True),
    Column("comments", Text, nullable=True),
    Column("journal_ref", Text, nullable=True),
    Column("doi", Text, nullable=True),
    Column("report_no", Text, nullable=True),
    Column("license", Text, nullable=True),
    Column("source", String(32), nullable=False, server_default=""),
    Column("deleted", Boolean, nullable=False, server_default="0"),
    Column("content_hash", String(32), nullable=False),
    # Bumped on every change; derived indexes catch up by reading rows with change_seq > their watermark.
    Column("change_seq", BigInteger, nullable=False),
    # Set by the trending job (votes with time decay); 0 until then. Derived, so not in content_hash.
    Column("trending_score", Float, nullable=False, server_default="0"),
    UniqueConstraint("change_seq", name="uq_papers_change_seq"),
)

# Named counters. Writers take the row lock for the whole transaction, so sequence numbers become
# visible in order: a reader that has seen seq N has seen every change below N.
sequences = Table(
    "sequences",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# Small JSON documents of job state: harvest progress, index watermarks.
sync_state = Table(
    "sync_state",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
