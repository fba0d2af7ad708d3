"""Tables of the store, the source of truth. Alembic migrations in ``migrations/`` create them;
``tests/test_store.py`` checks that the two never drift apart."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
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
    Column("trending_score", Float, nullable=False, server_default="0", index=True),
    # Equal to the number of rows in `votes` for the paper (kept in the same transaction as each vote).
    Column("upvotes", Integer, nullable=False, server_default="0"),
    # Votes counted elsewhere (a Hugging Face daily list imported with `paperwire import hf-daily`).
    Column("external_upvotes", Integer, nullable=False, server_default="0"),
    # Hidden by an admin: kept in the store, left out of lists and search.
    Column("hidden", Boolean, nullable=False, server_default="0"),
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


# -- accounts (passwordless: an e-mailed link signs in) -------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),  # lower-cased
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_login_at", DateTime(timezone=True), nullable=True),
    Column("is_admin", Boolean, nullable=False, server_default="0"),
)

# One row per sign-in link sent: the link carries the nonce, signed; a used nonce cannot sign in again.
login_links = Table(
    "login_links",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)

# Only a hash of the session id and API token is kept: a copy of the database signs nobody in.
sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),  # shown on the account page to tell tokens apart
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
)

# -- votes and daily papers ----------------------------------------------------------------------------

votes = Table(
    "votes",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("paper_id", String(64), ForeignKey("papers.id"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_votes_paper_id", "paper_id"),
)

# A paper on a day's list, as Hugging Face's daily papers: submitted once, by someone (or by the import).
daily_papers = Table(
    "daily_papers",
    metadata,
    Column("paper_id", String(64), ForeignKey("papers.id"), primary_key=True),
    Column("day", DateTime(timezone=True), nullable=False, index=True),  # midnight UTC of the list's day
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("submitted_by", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("submitter_name", String(320), nullable=True),  # for imported lists (a Hugging Face user name)
)

# -- outgoing mail -------------------------------------------------------------------------------------

# Every message passes through here: recorded before it is sent, marked after the server accepted it.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, unique=True),  # idempotency: one message per key, ever
    Column("kind", String(32), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("message", LargeBinary, nullable=False),  # the whole RFC 5322 message, as sent
    Column("status", String(16), nullable=False),  # pending, sending, sent, failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("claimed_until", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Index("ix_outbox_due", "status", "next_attempt_at"),
)

# Addresses that bounced permanently (5xx on RCPT): nothing more is sent to them.
suppressed_addresses = Table(
    "suppressed_addresses",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
