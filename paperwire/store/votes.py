"""Upvotes, daily submissions, hidden papers and the trending key: the store's side of them.

Every write is one transaction that starts by locking the ``papers`` sequence row, exactly as
:meth:`Store.apply` does. That lock does three jobs at once:

- it serialises writers of a paper's votes (SQLite's BEGIN IMMEDIATE already does; on PostgreSQL the row
  lock does), so ``papers.upvotes`` is set to a ``COUNT`` of the ``votes`` rows read *after* every earlier
  vote committed, and the count can never drift from the rows, however many clients vote at once;
- it hands out the next ``change_seq``: a paper whose count, trending key or hidden flag changed gets a
  new one, so every node's keyword index re-indexes it (new ``trending`` fast field, or drops it when
  hidden) on its next catch-up;
- sequence numbers become visible in order, so a catching-up reader never skips a change.

The trending key is recomputed from the rows on every change (see :mod:`paperwire.trending`), never
adjusted incrementally: removing a vote from a running log-sum-exp would lose precision over time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from sqlalchemy import (
    Boolean,
    Connection,
    Integer,
    Row,
    String,
    and_,
    cast,
    delete,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from paperwire.store.schema import daily_papers, papers, sequences, users, votes
from paperwire.store.store import _IN_CHUNK, _SEQ_NAME, Store, StoredPaper, _row_to_paper, _utc
from paperwire.trending import NO_SIGNAL, half_life_hours, trending_key

DailySort = Literal["upvotes", "published", "trending"]
DAILY_SORTS: tuple[str, ...] = ("upvotes", "published", "trending")


class UnknownPaper(LookupError):
    """The paper is not in the catalogue, was deleted, or (for votes and submissions) is hidden."""

    def __init__(self, paper_id: str, why: str = "not in the catalogue"):
        super().__init__(f"paper {paper_id}: {why}")
        self.paper_id = paper_id
        self.why = why


class UnknownUser(LookupError):
    """No account with this id (deleted while the request was on its way)."""

    def __init__(self, user_id: int):
        super().__init__(f"no user with id {user_id}")
        self.user_id = user_id


class AlreadySubmitted(Exception):
    """A paper is listed once, ever: ``day`` is the list it is on."""

    def __init__(self, paper_id: str, day: date):
        super().__init__(f"paper {paper_id} is already on the daily list of {day.isoformat()}")
        self.paper_id = paper_id
        self.day = day


@dataclass(frozen=True, slots=True)
class DailyEntry:
    """A paper's place on a daily list: what the Hub calls submittedOnDailyAt / submittedOnDailyBy."""

    paper_id: str
    day: date
    submitted_at: datetime
    submitted_by: int | None = None  # a user of this instance
    submitter_name: str | None = None  # or a name from elsewhere (an imported Hugging Face list)
    # False: on the list only because it was published that day in PAPERWIRE_DAILY_CATEGORIES.
    submitted: bool = True


@dataclass(frozen=True, slots=True)
class ExternalListing:
    """A paper on someone else's daily list (Hugging Face) with the votes it has there."""

    paper_id: str
    day: date
    submitted_at: datetime
    submitter_name: str | None
    upvotes: int


@dataclass
class ExternalResult:
    listed: int = 0  # new daily entries
    already_listed: int = 0  # on a list already (by anyone): that entry is kept
    changed: int = 0  # papers whose external votes or trending key changed
    missing: list[str] = field(default_factory=list)  # not in the catalogue (or deleted)


# -- transaction helpers -------------------------------------------------------------------------------


def _midnight(day: date) -> datetime:
    """Midnight UTC of a day: how ``daily_papers.day`` stores it (a datetime is taken as its UTC day)."""
    if isinstance(day, datetime):
        day = _utc(day).date()
    return datetime.combine(day, time.min, tzinfo=UTC)


def _lock_sequence(conn: Connection) -> int:
    return conn.execute(
        select(sequences.c.value).where(sequences.c.name == _SEQ_NAME).with_for_update()
    ).scalar_one()


def _save_sequence(conn: Connection, seq: int) -> None:
    conn.execute(update(sequences).where(sequences.c.name == _SEQ_NAME).values(value=seq))


_STATE = (
    papers.c.id,
    papers.c.deleted,
    papers.c.hidden,
    papers.c.published,
    papers.c.upvotes,
    papers.c.external_upvotes,
    papers.c.trending_score,
)


def _state(conn: Connection, paper_id: str) -> Row | None:
    return conn.execute(select(*_STATE).where(papers.c.id == paper_id)).first()


def _votable(conn: Connection, paper_id: str) -> Row:
    row = _state(conn, paper_id)
    if row is None:
        raise UnknownPaper(paper_id)
    if row.deleted:
        raise UnknownPaper(paper_id, "deleted from the catalogue")
    if row.hidden:
        raise UnknownPaper(paper_id, "hidden")
    return row


def _require_user(conn: Connection, user_id: int) -> None:
    if conn.execute(select(users.c.id).where(users.c.id == user_id)).first() is None:
        raise UnknownUser(user_id)


def _insert_ignore(conn: Connection, table, values: dict) -> int:  # noqa: ANN001
    """INSERT that does nothing on a duplicate key (both backends); returns the rows inserted."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    return conn.execute(dialect_insert(table).values(**values).on_conflict_do_nothing()).rowcount


def _refresh(
    conn: Connection, row: Row, seq: int, half_life: float, external: int | None = None
) -> tuple[int, int]:
    """Set the paper's vote count (from the rows), external votes and trending key; a new change_seq if
    anything changed. Returns ``(upvotes, seq)``."""
    paper_id = row.id
    # Read under the sequence lock: every vote committed before ours is in here, none can be added.
    times = [
        _utc(t)
        for t in conn.execute(select(votes.c.created_at).where(votes.c.paper_id == paper_id)).scalars()
    ]
    count = len(times)  # = COUNT(*) of the rows, never the old value plus one
    ext = row.external_upvotes if external is None else max(0, external)
    submitted_at = conn.execute(
        select(daily_papers.c.submitted_at).where(daily_papers.c.paper_id == paper_id)
    ).scalar()
    if not times and not ext and submitted_at is None:
        key = NO_SIGNAL  # nobody voted for, listed or counted votes for it
    else:
        anchor = _utc(submitted_at) if submitted_at is not None else _utc(row.published)
        key = trending_key(times, anchor, ext, half_life=half_life)
    if count != row.upvotes or ext != row.external_upvotes or key != row.trending_score:
        seq += 1
        conn.execute(
            update(papers)
            .where(papers.c.id == paper_id)
            .values(upvotes=count, external_upvotes=ext, trending_score=key, change_seq=seq)
        )
    return count, seq


# -- votes ---------------------------------------------------------------------------------------------


def upvote(store: Store, user_id: int, paper_id: str, now: datetime) -> int:
    """Record ``user_id``'s vote for the paper; returns the paper's new count of votes here.

    Idempotent: voting twice is one vote (the first one's time counts for trending). Raises
    :class:`UnknownPaper` for a paper that is missing, deleted or hidden, :class:`UnknownUser`."""
    half_life = half_life_hours()
    with store._writer.begin() as conn:
        seq = _lock_sequence(conn)
        row = _votable(conn, paper_id)
        _require_user(conn, user_id)
        _insert_ignore(conn, votes, {"user_id": user_id, "paper_id": paper_id, "created_at": _utc(now)})
        # Refreshed even when the vote existed: a count left stale by anything else is repaired here.
        count, new_seq = _refresh(conn, row, seq, half_life)
        if new_seq != seq:
            _save_sequence(conn, new_seq)
    return count


def remove_upvote(store: Store, user_id: int, paper_id: str, now: datetime | None = None) -> int:
    """Withdraw ``user_id``'s vote (nothing happens if there was none); returns the new count.

    ``now`` is accepted for symmetry with :func:`upvote`: the key is recomputed from the remaining rows,
    so the time of the withdrawal does not enter it."""
    half_life = half_life_hours()
    with store._writer.begin() as conn:
        seq = _lock_sequence(conn)
        row = _votable(conn, paper_id)
        conn.execute(delete(votes).where(votes.c.user_id == user_id, votes.c.paper_id == paper_id))
        count, new_seq = _refresh(conn, row, seq, half_life)
        if new_seq != seq:
            _save_sequence(conn, new_seq)
    return count


def user_votes(store: Store, user_id: int, paper_ids: Iterable[str]) -> set[str]:
    """Which of ``paper_ids`` the user has upvoted: what a list page needs to draw its vote buttons."""
    ids = list(dict.fromkeys(paper_ids))
    found: set[str] = set()
    with store.engine.connect() as conn:
        for i in range(0, len(ids), _IN_CHUNK):
            stmt = select(votes.c.paper_id).where(
                votes.c.user_id == user_id, votes.c.paper_id.in_(ids[i : i + _IN_CHUNK])
            )
            found.update(conn.execute(stmt).scalars())
    return found


def remove_user_votes(store: Store, user_id: int, *, delete_user: bool = False) -> int:
    """Remove every vote of ``user_id`` and update each affected paper's count and trending key, in one
    transaction; returns how many votes were removed.

    For account deletion. ``votes.user_id`` cascades on delete, but a cascade cannot update the counts:
    call this first, or with ``delete_user=True`` to delete the ``users`` row (sessions and tokens go by
    cascade) in the same transaction, so no vote can slip in between."""
    half_life = half_life_hours()
    with store._writer.begin() as conn:
        seq = start = _lock_sequence(conn)
        voted = list(conn.execute(select(votes.c.paper_id).where(votes.c.user_id == user_id)).scalars())
        conn.execute(delete(votes).where(votes.c.user_id == user_id))
        for paper_id in sorted(voted):
            row = _state(conn, paper_id)
            if row is not None:  # hidden and deleted papers are recounted too
                _, seq = _refresh(conn, row, seq, half_life)
        if delete_user:
            conn.execute(delete(users).where(users.c.id == user_id))
        if seq != start:
            _save_sequence(conn, seq)
    return len(voted)


# -- daily lists ---------------------------------------------------------------------------------------


def submit_daily(
    store: Store,
    paper_id: str,
    day: date,
    user_id: int | None,
    now: datetime,
    submitter_name: str | None = None,
) -> DailyEntry:
    """Put the paper on ``day``'s list. A paper is listed once, ever: a second submission raises
    :class:`AlreadySubmitted` with the day it is on. Its trending prior moves to ``now``."""
    half_life = half_life_hours()
    entry = DailyEntry(paper_id, _midnight(day).date(), _utc(now), user_id, submitter_name)
    with store._writer.begin() as conn:
        seq = _lock_sequence(conn)
        row = _votable(conn, paper_id)
        listed_on = conn.execute(
            select(daily_papers.c.day).where(daily_papers.c.paper_id == paper_id)
        ).scalar()
        if listed_on is not None:
            raise AlreadySubmitted(paper_id, _utc(listed_on).date())
        if user_id is not None:
            _require_user(conn, user_id)
        conn.execute(
            daily_papers.insert().values(
                paper_id=paper_id,
                day=_midnight(day),
                submitted_at=entry.submitted_at,
                submitted_by=user_id,
                submitter_name=submitter_name,
            )
        )
        _, new_seq = _refresh(conn, row, seq, half_life)
        if new_seq != seq:
            _save_sequence(conn, new_seq)
    return entry


def daily_entry(store: Store, paper_id: str) -> DailyEntry | None:
    """The paper's daily listing (day, when, by whom), or None if it was never submitted."""
    with store.engine.connect() as conn:
        row = conn.execute(select(daily_papers).where(daily_papers.c.paper_id == paper_id)).first()
    if row is None:
        return None
    return DailyEntry(
        row.paper_id, _utc(row.day).date(), _utc(row.submitted_at), row.submitted_by, row.submitter_name
    )


def daily_entries(store: Store, paper_ids: list[str]) -> dict[str, DailyEntry]:
    """The daily listings of these papers (those that have one), in one query: a page of hits."""
    rows = store.rows_in(
        "SELECT paper_id, day, submitted_at, submitted_by, submitter_name FROM daily_papers WHERE paper_id",
        list(paper_ids),
    )
    return {
        pid: DailyEntry(pid, store.driver_time(day).date(), store.driver_time(at), by, name)
        for pid, day, at, by, name in rows
    }


def daily_list(
    store: Store,
    start_day: date,
    end_day: date,
    sort: DailySort = "upvotes",
    limit: int = 50,
    offset: int = 0,
    *,
    categories: Sequence[str] | None = None,
) -> tuple[list[tuple[StoredPaper, DailyEntry]], int]:
    """The daily lists from ``start_day`` to ``end_day`` (both included: one day, a week, a month), and
    how many entries they hold in all. Hidden and deleted papers are left out.

    ``sort``: "upvotes" (votes here plus votes counted elsewhere, as the Hub ranks a day), "published"
    (newest first) or "trending" (the trending key). ``categories`` (default: the setting
    ``PAPERWIRE_DAILY_CATEGORIES``) adds every paper published on those days in those categories that
    nobody submitted: a small instance's lists are not empty just because few people submit."""
    if sort not in DAILY_SORTS:
        raise ValueError(f"sort must be one of {', '.join(DAILY_SORTS)}, got {sort!r}")
    if categories is None:
        from paperwire.config import get_settings

        categories = get_settings().daily_categories
    start, end = _midnight(start_day), _midnight(end_day) + timedelta(days=1)
    visible = and_(papers.c.deleted.is_(False), papers.c.hidden.is_(False))
    listed = (
        select(
            papers,
            daily_papers.c.day.label("d_day"),
            daily_papers.c.submitted_at.label("d_at"),
            daily_papers.c.submitted_by.label("d_by"),
            daily_papers.c.submitter_name.label("d_name"),
            literal(True, Boolean).label("d_submitted"),
        )
        .join(daily_papers, daily_papers.c.paper_id == papers.c.id)
        .where(visible, daily_papers.c.day >= start, daily_papers.c.day < end)
    )
    query = listed
    if categories:
        in_categories = or_(
            *(
                (literal(" ") + papers.c.categories + literal(" ")).contains(f" {c} ", autoescape=True)
                for c in categories
            )
        )
        published = (
            select(
                papers,
                papers.c.published.label("d_day"),
                papers.c.published.label("d_at"),
                cast(null(), Integer).label("d_by"),
                cast(null(), String).label("d_name"),
                literal(False, Boolean).label("d_submitted"),
            )
            .where(visible, papers.c.published >= start, papers.c.published < end, in_categories)
            .where(~exists().where(daily_papers.c.paper_id == papers.c.id))
        )
        query = union_all(listed, published)
    u = query.subquery()
    order = {
        "upvotes": [(u.c.upvotes + u.c.external_upvotes).desc(), u.c.trending_score.desc()],
        "published": [],
        "trending": [u.c.trending_score.desc()],
    }[sort]
    stmt = (
        select(u)
        .order_by(*order, u.c.published.desc().nulls_last(), u.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with store.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(u)).scalar_one()
        rows = conn.execute(stmt).all()
    out = []
    for r in rows:
        entry = DailyEntry(r.id, _utc(r.d_day).date(), _utc(r.d_at), r.d_by, r.d_name, bool(r.d_submitted))
        out.append((_row_to_paper(r), entry))
    return out, total


def record_external(store: Store, listings: Sequence[ExternalListing]) -> ExternalResult:
    """Record papers listed elsewhere (an imported Hugging Face daily list), in one transaction: each is
    put on its day's list unless it is on one already, its ``external_upvotes`` set to the count there,
    and its trending key recomputed. Re-recording the same listings changes nothing (no new change_seq).

    Hidden papers are updated too (the counts are facts; hiding only keeps them out of sight)."""
    half_life = half_life_hours()
    result = ExternalResult()
    with store._writer.begin() as conn:
        seq = start = _lock_sequence(conn)
        for item in listings:
            row = _state(conn, item.paper_id)
            if row is None or row.deleted:
                result.missing.append(item.paper_id)
                continue
            listed = conn.execute(
                select(daily_papers.c.paper_id).where(daily_papers.c.paper_id == item.paper_id)
            ).first()
            if listed is None:
                conn.execute(
                    daily_papers.insert().values(
                        paper_id=item.paper_id,
                        day=_midnight(item.day),
                        submitted_at=_utc(item.submitted_at),
                        submitted_by=None,
                        submitter_name=item.submitter_name,
                    )
                )
                result.listed += 1
            else:
                result.already_listed += 1
            before = seq
            _, seq = _refresh(conn, row, seq, half_life, external=item.upvotes)
            result.changed += seq != before
        if seq != start:
            _save_sequence(conn, seq)
    return result


# -- hiding --------------------------------------------------------------------------------------------


def set_hidden(store: Store, paper_id: str, hidden: bool) -> bool:
    """Hide a paper from lists, search and feeds (or show it again); True if that changed anything.

    The paper stays in the store (``Store.get`` returns it, the page decides what to show); the new
    change_seq makes every node's keyword index drop (or re-add) it on its next catch-up."""
    with store._writer.begin() as conn:
        seq = _lock_sequence(conn)
        row = _state(conn, paper_id)
        if row is None:
            raise UnknownPaper(paper_id)
        if row.deleted:
            raise UnknownPaper(paper_id, "deleted from the catalogue")
        if bool(row.hidden) == hidden:
            return False
        seq += 1
        conn.execute(update(papers).where(papers.c.id == paper_id).values(hidden=hidden, change_seq=seq))
        _save_sequence(conn, seq)
    return True


# -- trending ------------------------------------------------------------------------------------------


def trending(
    store: Store, since: datetime | None = None, limit: int = 20, offset: int = 0
) -> tuple[list[StoredPaper], int]:
    """Papers by trending key, highest first, and how many there are: only papers with a signal (votes,
    votes counted elsewhere, or a daily listing) and, with ``since``, only those listed, submitted or
    published since then (the trending lists of a day, week or month). Hidden papers are left out.

    An instance without votes gets an empty list here; its front page shows the newest papers instead."""
    where = [papers.c.deleted.is_(False), papers.c.hidden.is_(False), papers.c.trending_score > NO_SIGNAL]
    if since is not None:
        since = _utc(since)
        recent_listing = exists().where(
            daily_papers.c.paper_id == papers.c.id,
            or_(daily_papers.c.day >= since, daily_papers.c.submitted_at >= since),
        )
        where.append(or_(papers.c.published >= since, recent_listing))
    stmt = (
        select(papers)
        .where(*where)
        .order_by(papers.c.trending_score.desc(), papers.c.published.desc().nulls_last(), papers.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with store.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(papers).where(*where)).scalar_one()
        return [_row_to_paper(r) for r in conn.execute(stmt)], total


def recompute_trending(store: Store, *, half_life: float | None = None, batch: int = 500) -> int:
    """Recompute every paper's trending key from its rows; returns how many keys changed.

    Keys depend on the half-life: run this after changing ``PAPERWIRE_TRENDING_HALF_LIFE_HOURS`` (and to
    repair anything written around this module). Works in batches, each its own transaction, so votes are
    not held up for long."""
    h = half_life if half_life is not None else half_life_hours()
    with store.engine.connect() as conn:
        candidates = sorted(
            set(conn.execute(select(votes.c.paper_id).distinct()).scalars())
            | set(conn.execute(select(daily_papers.c.paper_id)).scalars())
            | set(
                conn.execute(
                    select(papers.c.id).where(
                        or_(
                            papers.c.external_upvotes != 0,
                            papers.c.upvotes != 0,
                            papers.c.trending_score != 0,
                        )
                    )
                ).scalars()
            )
        )
    changed = 0
    for i in range(0, len(candidates), batch):
        with store._writer.begin() as conn:
            seq = start = _lock_sequence(conn)
            for paper_id in candidates[i : i + batch]:
                row = _state(conn, paper_id)
                if row is not None:
                    _, seq = _refresh(conn, row, seq, h)
            if seq != start:
                _save_sequence(conn, seq)
            changed += seq - start
    return changed


def latest_daily_day(store: Store) -> date | None:
    """The newest day any paper was submitted to (what "today's papers" shows before today has any)."""
    with store.engine.connect() as conn:
        value = conn.execute(select(func.max(daily_papers.c.day))).scalar()
    if value is None:
        return None
    if isinstance(value, str):  # SQLite returns max() of a DateTime column as text
        value = datetime.fromisoformat(value)
    return value.date()
