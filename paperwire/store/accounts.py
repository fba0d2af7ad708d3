"""Accounts in the store: users, e-mailed sign-in links, sessions and personal API tokens.

Nothing here knows about HTTP or signing: callers hand in hashes (a session id or API token is never
stored in the clear, so a copy of the database signs nobody in) and the current time (so tests need no
sleeping). Every write that must be atomic -- using a link once, deleting an account -- is one
transaction on the store's write engine."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from paperwire.store.schema import api_tokens, login_links, sessions, users
from paperwire.store.store import Store, _utc

log = logging.getLogger("paperwire.accounts")

# An API token's last_used_at is written at most this often: a busy script must not turn every read
# into a write (SQLite has one writer at a time).
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    created_at: datetime
    last_login_at: datetime | None
    is_admin: bool


@dataclass(frozen=True, slots=True)
class ApiToken:
    """What the account page shows of a token: never the token itself (only its hash is stored)."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class LinkRejected(Exception):
    """A sign-in link cannot be used; the message says why in words a visitor understands."""


def _user(row) -> User:  # noqa: ANN001
    return User(row.id, row.email, _utc(row.created_at), _utc(row.last_login_at), bool(row.is_admin))


# -- users ----------------------------------------------------------------------------------------------


def get_user(store: Store, user_id: int) -> User | None:
    with store.engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
    return _user(row) if row else None


def get_user_by_email(store: Store, email: str) -> User | None:
    with store.engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.email == email.lower())).first()
    return _user(row) if row else None


def ensure_user(store: Store, email: str, *, now: datetime) -> User:
    """The user with this (already normalised) address, created if there is none."""
    email = email.lower()
    with store._writer.begin() as conn:
        return _ensure_user(conn, email, now)


def _ensure_user(conn, email: str, now: datetime) -> User:  # noqa: ANN001
    row = conn.execute(select(users).where(users.c.email == email)).first()
    if row is None:
        try:
            with conn.begin_nested():  # PostgreSQL: a concurrent insert must not abort our transaction
                conn.execute(insert(users).values(email=email, created_at=now, is_admin=False))
        except IntegrityError:
            pass  # someone created it between our read and insert: theirs is as good as ours
        row = conn.execute(select(users).where(users.c.email == email)).one()
    return _user(row)


def set_admin(store: Store, email: str, is_admin: bool, *, now: datetime) -> User | None:
    """Grant (creating the user if needed) or revoke admin rights; None when revoking an unknown address."""
    email = email.lower()
    with store._writer.begin() as conn:
        if is_admin:
            user = _ensure_user(conn, email, now)
        else:
            row = conn.execute(select(users).where(users.c.email == email)).first()
            if row is None:
                return None
            user = _user(row)
        conn.execute(update(users).where(users.c.id == user.id).values(is_admin=is_admin))
    return User(user.id, user.email, user.created_at, user.last_login_at, is_admin)


def list_admins(store: Store) -> list[User]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(users).where(users.c.is_admin.is_(True)).order_by(users.c.email)).all()
    return [_user(r) for r in rows]


def delete_user(store: Store, user_id: int) -> bool:
    """Delete an account and everything that signs in as it; False when there was none.

    Sessions and tokens go first, in their own transaction, so nothing signed in as the user can vote
    while the votes are removed; then :func:`paperwire.store.votes.remove_user_votes` removes the votes,
    updates the papers' counts and deletes the user row in one transaction (a foreign-key cascade would
    delete the votes but leave the counts wrong). The user row is deleted here too, for a store without
    that module; its foreign keys set ``daily_papers.submitted_by`` to NULL."""
    with store._writer.begin() as conn:
        row = conn.execute(select(users.c.email).where(users.c.id == user_id)).first()
        if row is None:
            return False
        conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
        conn.execute(delete(api_tokens).where(api_tokens.c.user_id == user_id))
    try:
        from paperwire.store.votes import remove_user_votes
    except ImportError:  # votes are another module's work; without it there are no counts to update
        pass
    else:
        remove_user_votes(store, user_id, delete_user=True)
    with store._writer.begin() as conn:
        conn.execute(delete(login_links).where(login_links.c.email == row.email))
        conn.execute(delete(users).where(users.c.id == user_id))
    return True


# -- sign-in links --------------------------------------------------------------------------------------


def recent_links(store: Store, email: str, *, since: datetime) -> list[datetime]:
    """When the links sent to ``email`` since ``since`` were created, oldest first: the per-address limit
    lives in the store so that every web process (``serve --workers``) counts the same links."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(login_links.c.created_at)
            .where(login_links.c.email == email.lower(), login_links.c.created_at > since)
            .order_by(login_links.c.created_at)
        ).all()
    return [_utc(r.created_at) for r in rows]


def add_login_link(store: Store, nonce: str, email: str, *, now: datetime) -> None:
    with store._writer.begin() as conn:
        conn.execute(insert(login_links).values(nonce=nonce, email=email.lower(), created_at=now))


def check_login_link(store: Store, nonce: str, email: str) -> None:
    """Raise LinkRejected unless the link exists for this address and is unused (reads only: the confirm
    page calls this on GET, which must not change anything)."""
    with store.engine.connect() as conn:
        row = conn.execute(select(login_links).where(login_links.c.nonce == nonce)).first()
    _check_link_row(row, email)


def _check_link_row(row, email: str) -> None:  # noqa: ANN001
    if row is None or row.email != email.lower():
        raise LinkRejected("This sign-in link is not valid.")
    if row.used_at is not None:
        raise LinkRejected("This sign-in link has already been used. Each link signs in once.")


def use_login_link(store: Store, nonce: str, email: str, *, now: datetime) -> User:
    """Mark the link used and return its user (created now if the address is new), all in one
    transaction: of two requests racing with the same link, exactly one signs in."""
    with store._writer.begin() as conn:
        row = conn.execute(select(login_links).where(login_links.c.nonce == nonce)).first()
        _check_link_row(row, email)
        used = conn.execute(
            update(login_links)
            .where(login_links.c.nonce == nonce, login_links.c.used_at.is_(None))
            .values(used_at=now)
        ).rowcount
        if used != 1:  # PostgreSQL: another transaction used it after our read
            raise LinkRejected("This sign-in link has already been used. Each link signs in once.")
        user = _ensure_user(conn, email.lower(), now)
        conn.execute(update(users).where(users.c.id == user.id).values(last_login_at=now))
    return User(user.id, user.email, user.created_at, now, user.is_admin)


# -- sessions -------------------------------------------------------------------------------------------


def create_session(store: Store, id_hash: str, user_id: int, *, now: datetime, expires_at: datetime) -> None:
    with store._writer.begin() as conn:
        conn.execute(
            insert(sessions).values(id_hash=id_hash, user_id=user_id, created_at=now, expires_at=expires_at)
        )


def session_user(store: Store, id_hash: str, *, now: datetime) -> User | None:
    stmt = (
        select(users)
        .join(sessions, sessions.c.user_id == users.c.id)
        .where(sessions.c.id_hash == id_hash, sessions.c.expires_at > now)
    )
    with store.engine.connect() as conn:
        row = conn.execute(stmt).first()
    return _user(row) if row else None


def delete_session(store: Store, id_hash: str) -> None:
    with store._writer.begin() as conn:
        conn.execute(delete(sessions).where(sessions.c.id_hash == id_hash))


def purge_expired(store: Store, *, now: datetime, link_age: timedelta) -> tuple[int, int]:
    """Delete expired sessions and sign-in links older than ``link_age`` (kept that long because the
    per-address limit counts them); returns how many of each went."""
    with store._writer.begin() as conn:
        n_sessions = conn.execute(delete(sessions).where(sessions.c.expires_at <= now)).rowcount
        n_links = conn.execute(delete(login_links).where(login_links.c.created_at < now - link_age)).rowcount
    return n_sessions, n_links


# -- API tokens -----------------------------------------------------------------------------------------


def create_api_token(
    store: Store, user_id: int, *, name: str, token_hash: str, prefix: str, now: datetime
) -> ApiToken:
    with store._writer.begin() as conn:
        token_id = conn.execute(
            insert(api_tokens)
            .values(user_id=user_id, name=name, token_hash=token_hash, prefix=prefix, created_at=now)
            .returning(api_tokens.c.id)
        ).scalar_one()
    return ApiToken(token_id, name, prefix, now, None)


def count_api_tokens(store: Store, user_id: int) -> int:
    with store.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(api_tokens).where(api_tokens.c.user_id == user_id)
        ).scalar_one()


def list_api_tokens(store: Store, user_id: int) -> list[ApiToken]:
    stmt = select(api_tokens).where(api_tokens.c.user_id == user_id).order_by(api_tokens.c.id.desc())
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [ApiToken(r.id, r.name, r.prefix, _utc(r.created_at), _utc(r.last_used_at)) for r in rows]


def revoke_api_token(store: Store, user_id: int, token_id: int) -> bool:
    """Delete one of this user's tokens (another user's id deletes nothing); False when none matched."""
    with store._writer.begin() as conn:
        return (
            conn.execute(
                delete(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id)
            ).rowcount
            == 1
        )


def token_user(store: Store, token_hash: str, *, now: datetime) -> User | None:
    """The user a token belongs to, recording when it was last used (at most once a minute)."""
    stmt = (
        select(users, api_tokens.c.id.label("token_id"), api_tokens.c.last_used_at)
        .join(api_tokens, api_tokens.c.user_id == users.c.id)
        .where(api_tokens.c.token_hash == token_hash)
    )
    with store.engine.connect() as conn:
        row = conn.execute(stmt).first()
    if row is None:
        return None
    last = _utc(row.last_used_at)
    if last is None or now - last >= TOKEN_TOUCH_INTERVAL:
        try:
            with store._writer.begin() as conn:
                conn.execute(
                    update(api_tokens).where(api_tokens.c.id == row.token_id).values(last_used_at=now)
                )
        except Exception:  # bookkeeping only: a busy database must not refuse the request
            log.warning("could not record the use of API token %s", row.token_id, exc_info=True)
    return _user(row)
