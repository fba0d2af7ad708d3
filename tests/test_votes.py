"""Votes, daily lists and hidden papers (paperwire/store/votes.py), on SQLite and a real PostgreSQL."""

from __future__ import annotations

import multiprocessing
import random
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import tantivy
from sqlalchemy import func, insert, select

from paperwire.models import Author, Paper, Tombstone
from paperwire.search.keyword import KeywordIndex
from paperwire.store import Store
from paperwire.store import votes as v
from paperwire.store.schema import daily_papers, papers, sequences, users, votes
from paperwire.trending import NO_SIGNAL, trending_key

NOW = datetime(2026, 4, 7, 12, tzinfo=UTC)
DAY = NOW.date()


def paper(pid: str, published: datetime = NOW - timedelta(hours=6), **kw) -> Paper:
    return Paper(
        id=pid,
        title=kw.pop("title", f"Paper {pid}"),
        abstract="We study decoding.",
        authors=[Author("Ada Lovelace")],
        categories=kw.pop("categories", ["cs.CL"]),
        published=published,
        updated=published,
        source="test",
        **kw,
    )


def add_users(store: Store, n: int) -> list[int]:
    with store._writer.begin() as conn:
        first = conn.execute(select(func.count()).select_from(users)).scalar_one()
        for i in range(first, first + n):
            conn.execute(insert(users).values(email=f"reader{i}@example.org", created_at=NOW))
        return list(conn.execute(select(users.c.id).order_by(users.c.id)).scalars())[first:]


def vote_rows(store: Store, paper_id: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(votes).where(votes.c.paper_id == paper_id)
        ).scalar_one()


def assert_consistent(store: Store) -> None:
    """upvotes = rows in `votes`, the key = the key of those rows, change_seq unique and below the counter."""
    with store.engine.connect() as conn:
        counter = conn.execute(select(sequences.c.value).where(sequences.c.name == "papers")).scalar_one()
        rows = conn.execute(select(papers.c.id, papers.c.change_seq)).all()
    assert len({r.change_seq for r in rows}) == len(rows)
    assert max(r.change_seq for r in rows) == counter
    for pid, _ in rows:
        got = store.get(pid, include_deleted=True)
        assert got.upvotes == vote_rows(store, pid), pid
        with store.engine.connect() as conn:
            times = list(conn.execute(select(votes.c.created_at).where(votes.c.paper_id == pid)).scalars())
            listed = conn.execute(
                select(daily_papers.c.submitted_at).where(daily_papers.c.paper_id == pid)
            ).scalar()
        times = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times]
        if not times and not got.external_upvotes and listed is None:
            assert got.trending_score == NO_SIGNAL
        else:
            anchor = (
                (listed.replace(tzinfo=UTC) if listed.tzinfo is None else listed) if listed else got.published
            )
            assert got.trending_score == pytest.approx(
                trending_key(times, anchor, got.external_upvotes), abs=1e-9
            )


@pytest.fixture(autouse=True)
def _half_life(monkeypatch) -> None:
    monkeypatch.setenv("PAPERWIRE_TRENDING_HALF_LIFE_HOURS", "24")


# -- votes -----------------------------------------------------------------------------------------------


def test_upvote_is_idempotent_and_counted_from_rows(store: Store):
    store.apply([paper("2604.00001"), paper("2604.00002")])
    a, b = add_users(store, 2)
    seq = store.last_change_seq()
    assert v.upvote(store, a, "2604.00001", NOW) == 1
    assert store.last_change_seq() == seq + 1
    assert store.get("2604.00001").change_seq == seq + 1
    assert v.upvote(store, a, "2604.00001", NOW + timedelta(hours=1)) == 1  # twice is once
    assert store.last_change_seq() == seq + 1, "nothing changed, so no new change_seq"
    assert v.upvote(store, b, "2604.00001", NOW) == 2
    got = store.get("2604.00001")
    assert (got.upvotes, got.votes, vote_rows(store, "2604.00001")) == (2, 2, 2)
    assert v.remove_upvote(store, a, "2604.00001", NOW) == 1
    assert v.remove_upvote(store, a, "2604.00001", NOW) == 1  # removing a missing vote: no change
    assert store.get("2604.00001").upvotes == 1
    assert store.get("2604.00002").upvotes == 0
    assert_consistent(store)


def test_first_vote_time_is_kept(store: Store):
    store.apply([paper("2604.00001")])
    (a,) = add_users(store, 1)
    v.upvote(store, a, "2604.00001", NOW - timedelta(hours=10))
    key = store.get("2604.00001").trending_score
    v.upvote(store, a, "2604.00001", NOW)
    assert store.get("2604.00001").trending_score == key


def test_unknown_deleted_and_hidden_papers_refuse_votes(store: Store):
    store.apply([paper("2604.00001"), paper("2604.00002"), paper("2604.00003")])
    (a,) = add_users(store, 1)
    store.apply([Tombstone("2604.00002")])
    v.set_hidden(store, "2604.00003", True)
    for pid, why in (
        ("2604.09999", "not in the catalogue"),
        ("2604.00002", "deleted"),
        ("2604.00003", "hidden"),
    ):
        for call in (v.upvote, v.remove_upvote):
            with pytest.raises(v.UnknownPaper, match=why) as err:
                call(store, a, pid, NOW)
            assert err.value.paper_id == pid
        with pytest.raises(v.UnknownPaper):
            v.submit_daily(store, pid, DAY, a, NOW)
    with pytest.raises(v.UnknownUser):
        v.upvote(store, 999, "2604.00001", NOW)
    assert vote_rows(store, "2604.00001") == 0
    assert_consistent(store)


def test_user_votes(store: Store):
    store.apply([paper(f"2604.{i:05d}") for i in range(1, 6)])
    a, b = add_users(store, 2)
    for pid in ("2604.00001", "2604.00003"):
        v.upvote(store, a, pid, NOW)
    v.upvote(store, b, "2604.00002", NOW)
    ids = [f"2604.{i:05d}" for i in range(1, 6)] + ["2604.09999"]
    assert v.user_votes(store, a, ids) == {"2604.00001", "2604.00003"}
    assert v.user_votes(store, b, ids) == {"2604.00002"}
    assert v.user_votes(store, a, []) == set()


def test_remove_user_votes_recounts_every_paper(store: Store):
    store.apply([paper(f"2604.{i:05d}") for i in range(1, 4)])
    a, b = add_users(store, 2)
    for pid in ("2604.00001", "2604.00002", "2604.00003"):
        v.upvote(store, a, pid, NOW)
    v.upvote(store, b, "2604.00001", NOW)
    v.set_hidden(store, "2604.00003", True)  # hidden papers are recounted too
    assert v.remove_user_votes(store, a) == 3
    assert [store.get(f"2604.{i:05d}").upvotes for i in range(1, 4)] == [1, 0, 0]
    assert store.get("2604.00002").trending_score == NO_SIGNAL
    assert_consistent(store)
    assert v.remove_user_votes(store, b, delete_user=True) == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(users.c.id).where(users.c.id == b)).first() is None
    assert store.get("2604.00001").upvotes == 0
    assert_consistent(store)


def _hammer(url: str, paper_ids: list[str], user_ids: list[int], ops: int, seed: int) -> None:
    """One client: its own engine and connection, voting and unvoting at random."""
    s = Store.open(url, run_migrations=False)
    rng = random.Random(seed)
    try:
        for _ in range(ops):
            pid, uid = rng.choice(paper_ids), rng.choice(user_ids)
            if rng.random() < 0.6:
                v.upvote(s, uid, pid, NOW - timedelta(minutes=rng.randint(0, 3000)))
            else:
                v.remove_upvote(s, uid, pid, NOW)
    finally:
        s.close()


def test_many_parallel_clients_keep_counts_equal_to_rows(store: Store, db_url: str):
    """Threads and processes, each with its own connection, vote and unvote on the same papers while an
    import writes other papers: the counts always end equal to the rows, on both backends."""
    store.apply([paper("2604.00001"), paper("2604.00002")])
    uids = add_users(store, 12)
    targets = ["2604.00001", "2604.00002"]
    errors: list[BaseException] = []

    def client(seed: int) -> None:
        try:
            _hammer(db_url, targets, uids, 30, seed)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def importer() -> None:
        try:
            s = Store.open(db_url, run_migrations=False)
            for b in range(6):
                s.apply([paper(f"2605.{b * 10 + i + 1:05d}") for i in range(10)])
            s.close()
        except BaseException as exc:
            errors.append(exc)

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(db_url, targets, uids, 20, 100 + n)) for n in range(3)]
    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    threads.append(threading.Thread(target=importer))
    for p in procs:
        p.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    for p in procs:
        p.join(timeout=300)
    assert not errors, errors
    assert [p.exitcode for p in procs] == [0, 0, 0]
    for pid in targets:
        got = store.get(pid)
        assert got.upvotes == vote_rows(store, pid)
        assert got.upvotes > 0
    assert store.count() == 62
    assert_consistent(store)


# -- daily lists -----------------------------------------------------------------------------------------


def test_submit_daily_once_ever(store: Store):
    store.apply([paper("2604.00001"), paper("2604.00002"), paper("2604.00003")])
    (a,) = add_users(store, 1)
    seq = store.last_change_seq()
    entry = v.submit_daily(store, "2604.00001", DAY, a, NOW)
    assert entry == v.DailyEntry("2604.00001", DAY, NOW, a, None)
    assert store.get("2604.00001").change_seq == seq + 1  # the key moved: indexes must follow
    with pytest.raises(v.AlreadySubmitted) as err:
        v.submit_daily(store, "2604.00001", DAY + timedelta(days=1), None, NOW)
    assert err.value.day == DAY
    assert v.daily_entry(store, "2604.00001") == entry
    assert v.daily_entry(store, "2604.00002") is None
    imported = v.submit_daily(store, "2604.00002", DAY, None, NOW, submitter_name="akhaliq")
    assert v.daily_entry(store, "2604.00002") == imported
    assert imported.submitter_name == "akhaliq" and imported.submitted_by is None
    with pytest.raises(v.UnknownUser):
        v.submit_daily(store, "2604.00003", DAY, 999, NOW)
    assert v.daily_entry(store, "2604.00003") is None


def _listed(store: Store, start: date, end: date, **kw) -> list[str]:
    rows, total = v.daily_list(store, start, end, **kw)
    assert total >= len(rows)
    return [p.id for p, _ in rows]


def test_daily_list_of_a_day_week_and_month(store: Store):
    days = [DAY - timedelta(days=n) for n in range(10)]
    store.apply([paper(f"2604.{i:05d}", published=NOW - timedelta(days=i, hours=i)) for i in range(1, 11)])
    uids = add_users(store, 5)
    for i in range(1, 11):
        v.submit_daily(store, f"2604.{i:05d}", days[i - 1], None, NOW - timedelta(days=i - 1))
    # upvotes: paper 3 has 3 votes, paper 2 has 2, paper 1 one; paper 4 has 4 counted elsewhere
    for n, pid in ((3, "2604.00003"), (2, "2604.00002"), (1, "2604.00001")):
        for uid in uids[:n]:
            v.upvote(store, uid, pid, NOW)
    v.record_external(store, [v.ExternalListing("2604.00004", days[3], NOW, None, 4)])

    assert _listed(store, DAY, DAY) == ["2604.00001"]
    week = _listed(store, DAY - timedelta(days=6), DAY)
    assert week[:4] == ["2604.00004", "2604.00003", "2604.00002", "2604.00001"]
    assert len(week) == 7
    assert _listed(store, DAY - timedelta(days=6), DAY, sort="published") == [
        f"2604.{i:05d}" for i in range(1, 8)
    ]
    rows, total = v.daily_list(store, DAY - timedelta(days=30), DAY, limit=3, offset=3)
    assert total == 10 and len(rows) == 3
    paper_, entry = v.daily_list(store, days[3], days[3])[0][0]
    assert paper_.id == "2604.00004" and paper_.votes == 4 and entry.day == days[3] and entry.submitted
    by_trend = _listed(store, DAY - timedelta(days=30), DAY, sort="trending")
    keys = [store.get(pid).trending_score for pid in by_trend]
    assert keys == sorted(keys, reverse=True)
    with pytest.raises(ValueError):
        v.daily_list(store, DAY, DAY, sort="random")

    v.set_hidden(store, "2604.00003", True)
    assert "2604.00003" not in _listed(store, DAY - timedelta(days=30), DAY)
    assert v.daily_list(store, DAY - timedelta(days=30), DAY)[1] == 9


def test_daily_list_includes_categories_of_the_day(store: Store, monkeypatch):
    published = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=14)
    store.apply(
        [
            paper("2604.00001", published, categories=["cs.CL"]),
            paper("2604.00002", published, categories=["math.ST", "cs.LG"]),  # cross-list counts
            paper("2604.00003", published, categories=["hep-th"]),
            paper("2604.00004", published - timedelta(days=1), categories=["cs.CL"]),  # the day before
            paper("2604.00005", published, categories=["cs.CL"]),  # submitted: listed once
            paper("2604.00006", published, categories=["cs.CLX"]),  # not cs.CL
        ]
    )
    v.submit_daily(store, "2604.00005", DAY, None, NOW)
    assert _listed(store, DAY, DAY, categories=()) == ["2604.00005"]
    rows, total = v.daily_list(store, DAY, DAY, sort="published", categories=["cs.CL", "cs.LG"])
    assert sorted(p.id for p, _ in rows) == ["2604.00001", "2604.00002", "2604.00005"] and total == 3
    entries = {p.id: e for p, e in rows}
    assert entries["2604.00005"].submitted
    assert not entries["2604.00001"].submitted and entries["2604.00001"].day == DAY
    assert entries["2604.00001"].submitted_at == published
    # the setting is the default
    monkeypatch.setenv("PAPERWIRE_DAILY_CATEGORIES", "cs.CL, hep-th")
    assert sorted(_listed(store, DAY, DAY)) == ["2604.00001", "2604.00003", "2604.00005"]
    assert sorted(_listed(store, DAY - timedelta(days=1), DAY)) == [
        "2604.00001",
        "2604.00003",
        "2604.00004",
        "2604.00005",
    ]
    v.set_hidden(store, "2604.00001", True)
    assert "2604.00001" not in _listed(store, DAY, DAY)


# -- hiding ----------------------------------------------------------------------------------------------


def test_hidden_papers_leave_lists_and_the_index(store: Store, tmp_path):
    store.apply([paper(f"2604.{i:05d}", published=NOW - timedelta(hours=i)) for i in range(1, 4)])
    index = KeywordIndex(tmp_path / "kw")
    index.catch_up(store)
    seq = store.last_change_seq()
    assert v.set_hidden(store, "2604.00001", True) is True
    assert v.set_hidden(store, "2604.00001", True) is False  # no change, no new change_seq
    assert store.last_change_seq() == seq + 1
    assert store.get("2604.00001").hidden, "the page decides what to show"
    assert [p.id for p in store.newest()] == ["2604.00002", "2604.00003"]

    def indexed() -> list[str]:
        searcher = index.searcher()
        hits = searcher.search(tantivy.Query.all_query(), limit=10).hits
        return sorted(index.ids(searcher, hits))

    index.catch_up(store)
    assert indexed() == ["2604.00002", "2604.00003"]
    index.catch_up(store, rebuild=True)
    assert indexed() == ["2604.00002", "2604.00003"]
    v.set_hidden(store, "2604.00001", False)
    index.catch_up(store)
    assert indexed() == ["2604.00001", "2604.00002", "2604.00003"]
    assert [p.id for p in store.newest(1)] == ["2604.00001"]
    with pytest.raises(v.UnknownPaper):
        v.set_hidden(store, "2604.09999", True)
    store.apply([Tombstone("2604.00002")])
    with pytest.raises(v.UnknownPaper, match="deleted"):
        v.set_hidden(store, "2604.00002", True)
    assert_consistent(store)
