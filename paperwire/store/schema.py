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
    func,
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
# A search that names a DOI finds its paper (DOIs are case-insensitive; arXiv keeps them as typed).
Index("ix_papers_doi_lower", func.lower(papers.c.doi))

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
    # pending, sending (claimed), handoff (the server has the whole message but the final "."), sent, failed
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("claimed_until", DateTime(timezone=True), nullable=True),
    Column("claimed_by", String(200), nullable=True),  # host/pid/start time of the sending process
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

# -- e-mail digests: subscriptions (paperwire/store/subscriptions.py) ----------------------------------

# One row per address that ever subscribed (double opt-in: pending until the e-mailed link is confirmed).
subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),  # lower-cased
    Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True),
    Column("status", String(16), nullable=False),  # pending, active, unsubscribed, bounced
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True), nullable=True),
    Column("unsubscribed_at", DateTime(timezone=True), nullable=True),
    Column("frequency", String(16), nullable=False, server_default="daily"),  # daily, weekly, off
    Column("hour", Integer, nullable=False, server_default="8"),  # local delivery hour, 0-23
    Column("timezone", String(64), nullable=False, server_default="UTC"),  # IANA name
    Column("size", Integer, nullable=False, server_default="10"),  # papers per digest, 5-50
    # Daily digests follow arXiv's announcement days (Mon-Fri) unless this is set.
    Column("weekends", Boolean, nullable=False, server_default="0"),
    # A period with nothing new: True sends a one-line note, False sends nothing.
    Column("empty_note", Boolean, nullable=False, server_default="0"),
    # Signed preference and unsubscribe links carry it: bumping it revokes every link sent so far.
    Column("token_version", Integer, nullable=False, server_default="1"),
    Column("last_confirmation_sent_at", DateTime(timezone=True), nullable=True),
    # The digest sender's progress: the last period composed for this subscriber ("daily:2026-11-27") and
    # when. Senders lock the row and set these in the transaction that queues the digest.
    Column("last_digest_period", String(32), nullable=True),
    Column("last_digest_at", DateTime(timezone=True), nullable=True),
    Index("ix_subscribers_status", "status"),
)

# What a subscriber wants: categories (cs.CL, cs.*), authors, queries (saved searches), papers to be like.
subscriber_topics = Table(
    "subscriber_topics",
    metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),  # category, author, query, like
    Column("value", String(300), primary_key=True),
)

# One row per subscriber and period ("daily:2026-11-27"): the sender claims it before composing, so a
# retried or concurrent job never sends a period twice.
digest_sends = Table(
    "digest_sends",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    Column("period", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # claimed, sent
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("outbox_key", String(200), nullable=True),
    # The papers it carried, space-separated (no paper goes to the same subscriber twice): one row per
    # digest rather than one per paper, which was most of a digest's write cost.
    Column("paper_ids", Text, nullable=True),
    UniqueConstraint("subscriber_id", "period", name="uq_digest_sends_subscriber_period"),
    Index("ix_digest_sends_subscriber", "subscriber_id", "claimed_at"),
)
