"""The trending key (paperwire/trending.py) on a fixed clock, and trending order in the store and index."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
import tantivy
from sqlalchemy import insert

from paperwire.config import SettingsError, get_settings
from paperwire.models import Author, Paper
from paperwire.search.keyword import KeywordIndex
from paperwire.store import Store
from paperwire.store import votes as v
from paperwire.store.schema import users
from paperwire.trending import (
    EPOCH,
    NO_SIGNAL,
    PRIOR_VOTES,
    current_score,
    half_lives,
    trending_key,
)

NOW = datetime(2026, 4, 7, 12, tzinfo=UTC)
H = 24.0


def ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def naive_score(vote_times, anchor, external=0, now=NOW, h=H) -> float:
    """The definition, summed directly (fine for small exponents)."""
    age = lambda t: (now - t).total_seconds() / 3600  # noqa: E731
    return sum(2 ** (-age(t) / h) for t in vote_times) + (external + PRIOR_VOTES) * 2 ** (-age(anchor) / h)


# -- the formula -----------------------------------------------------------------------------------------


def test_a_vote_halves_every_half_life():
    key = trending_key([NOW], None, prior=0)
    assert current_score(key, NOW, half_life=H) == pytest.approx(1.0)
    assert current_score(key, NOW + timedelta(hours=24), half_life=H) == pytest.approx(0.5)
    assert current_score(key, NOW + timedelta(days=7), half_life=H) == pytest.approx(1 / 128)
    assert half_lives(EPOCH + timedelta(hours=48), H) == 2.0


def test_key_matches_the_direct_sum():
    rng = random.Random(7)
    for _ in range(50):
        votes = [ago(rng.uniform(0, 24 * 10)) for _ in range(rng.randint(0, 30))]
        anchor = ago(rng.uniform(0, 24 * 20))
        external = rng.randint(0, 50)
        key = trending_key(votes, anchor, external, half_life=H)
        assert current_score(key, NOW, half_life=H) == pytest.approx(naive_score(votes, anchor, external))


def test_order_by_key_is_order_by_score_at_every_moment():
    """The point of the key: sorting by it never goes stale, so the index never re-sorts on a timer."""
    rng = random.Random(11)
    papers = []
    for _ in range(40):
        votes = [ago(rng.uniform(0, 24 * 14)) for _ in range(rng.randint(0, 12))]
        papers.append((trending_key(votes, ago(rng.uniform(0, 24 * 30)), half_life=H), votes))
    by_key = sorted(range(len(papers)), key=lambda i: papers[i][0])
    for later in (0, 1, 24, 24 * 7, 24 * 60):
        at = NOW + timedelta(hours=later)
        scores = [current_score(k, at, half_life=H) for k, _ in papers]
        assert sorted(range(len(papers)), key=lambda i: scores[i]) == by_key
        # ratios between papers stay the same too
        assert scores[by_key[-1]] / scores[by_key[0]] == pytest.approx(
            2 ** (papers[by_key[-1]][0] - papers[by_key[0]][0])
        )


def test_stable_for_huge_exponents_and_many_votes():
    """Hours since 1970 in half-lives are tens of thousands (hundreds of thousands with a short half-life):
    2^that overflows a float, the log-sum-exp must not."""
    votes = [ago(i / 60) for i in range(10_000)]
    for h in (24.0, 1.0, 0.1):
        key = trending_key(votes, ago(1), 5, half_life=h)
        assert math.isfinite(key) and key > 0
        assert half_lives(NOW, h) < key < half_lives(NOW, h) + math.log2(10_006)
    # a clock far in the future cannot overflow the displayed score either
    assert math.isfinite(current_score(trending_key([NOW + timedelta(days=3650)], None), NOW, half_life=H))


def test_prior_lets_a_fresh_submission_outrank_old_votes_but_not_a_fresh_vote():
    fresh = trending_key([], ago(1), half_life=H)  # submitted an hour ago, no votes yet
    old_few = trending_key([ago(72)] * 3, ago(24 * 30), half_life=H)
    old_many = trending_key([ago(72)] * 10, ago(120), half_life=H)
    one_vote = trending_key([ago(1)], ago(2), half_life=H)
    assert fresh > old_few
    assert one_vote > old_many > fresh
    # the prior is half a vote: a single vote at the same moment outweighs it
    assert trending_key([NOW], NOW, prior=0) > trending_key([], NOW)


def test_external_votes_sit_at_the_anchor():
    anchor = ago(30)
    key = trending_key([], anchor, 40, half_life=H)
    assert current_score(key, NOW, half_life=H) == pytest.approx(40.5 * 2 ** (-30 / 24))
    # the same as 40 of our own votes cast at that moment
    assert key == pytest.approx(trending_key([anchor] * 40, anchor, half_life=H))


def test_without_anchor_the_first_vote_stands_in():
    assert trending_key([ago(5), ago(2)], None, half_life=H) == pytest.approx(
        trending_key([ago(5), ago(2)], ago(5), half_life=H)
    )
    assert trending_key([], None) == NO_SIGNAL
    assert current_score(NO_SIGNAL, NOW) == 0.0


def test_the_worked_examples_in_the_docs():
    """docs/trending.md quotes these numbers."""
    rows = {
        "A": (trending_key([ago(72)] * 10, ago(120), half_life=H), 1.2656),
        "B": (trending_key([ago(1)], ago(2), half_life=H), 1.4435),
        "C": (trending_key([], ago(1), half_life=H), 0.4858),
        "D": (trending_key([ago(72)] * 3, ago(24 * 30), half_life=H), 0.3750),
        "E": (trending_key([], ago(30), 40, half_life=H), 17.0282),
    }
    assert half_lives(NOW, H) == 20550.5
    for key, score in rows.values():
        assert current_score(key, NOW, half_life=H) == pytest.approx(score, abs=5e-5)
        assert current_score(key, NOW + timedelta(days=1), half_life=H) == pytest.approx(score / 2, abs=5e-5)
    assert rows["A"][0] == pytest.approx(20550.8399, abs=1e-4)
    assert sorted(rows, key=lambda n: -rows[n][0]) == ["E", "B", "A", "C", "D"]


def test_half_life_setting(monkeypatch):
    monkeypatch.delenv("PAPERWIRE_TRENDING_HALF_LIFE_HOURS", raising=False)
    assert get_settings().trending_half_life_hours == 24.0
    monkeypatch.setenv("PAPERWIRE_TRENDING_HALF_LIFE_HOURS", "48")
    assert get_settings().trending_half_life_hours == 48.0
    key = trending_key([NOW], None, prior=0)
    assert current_score(key, NOW + timedelta(hours=48)) == pytest.approx(0.5)
    for bad in ("0", "-3", "soon"):
        monkeypatch.setenv("PAPERWIRE_TRENDING_HALF_LIFE_HOURS", bad)
        with pytest.raises(SettingsError):
            get_settings()


# -- in the store and the index --------------------------------------------------------------------------


def paper(pid: str, published: datetime, title: str = "Speculative decoding", **kw) -> Paper:
    return Paper(
        id=pid,
        title=title,
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
        for i in range(n):
            conn.execute(insert(users).values(email=f"reader{i}@example.org", created_at=NOW))
        return list(range(1, n + 1))


@pytest.fixture
def clocked(monkeypatch) -> None:
    monkeypatch.setenv("PAPERWIRE_TRENDING_HALF_LIFE_HOURS", "24")


def test_votes_set_the_key_from_the_rows(store: Store, clocked):
    store.apply([paper("2604.00001", ago(48)), paper("2604.00002", ago(5))])
    uids = add_users(store, 3)
    assert store.get("2604.00001").trending_score == NO_SIGNAL
    for uid, hours in zip(uids, (30, 20, 10), strict=True):
        v.upvote(store, uid, "2604.00001", ago(hours))
    got = store.get("2604.00001")
    expected = trending_key([ago(30), ago(20), ago(10)], ago(48), half_life=H)
    assert got.trending_score == pytest.approx(expected, abs=1e-9)
    v.remove_upvote(store, uids[1], "2604.00001", NOW)
    assert store.get("2604.00001").trending_score == pytest.approx(
        trending_key([ago(30), ago(10)], ago(48), half_life=H), abs=1e-9
    )
    # the last vote gone and never listed: back to "no signal"
    v.remove_upvote(store, uids[0], "2604.00001")
    v.remove_upvote(store, uids[2], "2604.00001")
    assert store.get("2604.00001").trending_score == NO_SIGNAL


def test_submission_moves_the_prior(store: Store, clocked):
    store.apply([paper("2604.00001", ago(24 * 10))])
    v.submit_daily(store, "2604.00001", NOW.date(), None, ago(1))
    assert store.get("2604.00001").trending_score == pytest.approx(
        trending_key([], ago(1), half_life=H), abs=1e-9
    )


def test_trending_ranks_by_key_within_a_window(store: Store, clocked):
    store.apply(
        [
            paper("2604.00001", ago(24 * 40)),  # old, many old votes
            paper("2604.00002", ago(3)),  # new, one fresh vote
            paper("2604.00003", ago(2)),  # submitted, no votes
            paper("2604.00004", ago(1)),  # nothing at all: no signal
            paper("2604.00005", ago(4)),  # hidden
        ]
    )
    uids = add_users(store, 10)
    for uid in uids:
        v.upvote(store, uid, "2604.00001", ago(72))
    v.upvote(store, uids[0], "2604.00002", ago(1))
    v.upvote(store, uids[0], "2604.00005", ago(1))
    v.submit_daily(store, "2604.00003", NOW.date(), uids[1], ago(1))
    v.set_hidden(store, "2604.00005", True)

    ranked, total = v.trending(store, None, limit=10)
    assert [p.id for p in ranked] == ["2604.00002", "2604.00001", "2604.00003"]
    assert total == 3
    week, total = v.trending(store, ago(24 * 7), limit=10)
    assert [p.id for p in week] == ["2604.00002", "2604.00003"] and total == 2
    page, total = v.trending(store, None, limit=1, offset=1)
    assert [p.id for p in page] == ["2604.00001"] and total == 3
    # an old paper listed today counts in today's window
    v.submit_daily(store, "2604.00001", NOW.date(), None, NOW)
    today, _ = v.trending(store, datetime.combine(NOW.date(), datetime.min.time(), tzinfo=UTC))
    assert "2604.00001" in {p.id for p in today}


def test_the_keyword_index_sorts_by_the_stored_key(store: Store, tmp_path, clocked):
    store.apply([paper(f"2604.{i:05d}", ago(24 * i)) for i in range(1, 6)])
    uids = add_users(store, 5)
    index = KeywordIndex(tmp_path / "kw")
    index.catch_up(store)
    # votes change keys; the index follows through change_seq alone
    for n, pid in enumerate(["2604.00004", "2604.00002", "2604.00005"]):
        for uid in uids[: 3 - n]:
            v.upvote(store, uid, pid, ago(1))
    assert index.catch_up(store) == 3
    searcher = index.searcher()
    hits = searcher.search(
        tantivy.Query.all_query(), limit=5, order_by_field="trending", order=tantivy.Order.Desc
    ).hits
    assert index.ids(searcher, hits)[:3] == ["2604.00004", "2604.00002", "2604.00005"]


def test_recompute_after_a_half_life_change(store: Store, monkeypatch):
    monkeypatch.setenv("PAPERWIRE_TRENDING_HALF_LIFE_HOURS", "24")
    store.apply([paper("2604.00001", ago(48)), paper("2604.00002", ago(48))])
    uid = add_users(store, 1)[0]
    v.upvote(store, uid, "2604.00001", ago(10))
    seq = store.last_change_seq()
    assert v.recompute_trending(store) == 0
    assert store.last_change_seq() == seq
    monkeypatch.setenv("PAPERWIRE_TRENDING_HALF_LIFE_HOURS", "72")
    assert v.recompute_trending(store) == 1
    assert store.get("2604.00001").trending_score == pytest.approx(
        trending_key([ago(10)], ago(48), half_life=72.0), abs=1e-9
    )
    assert store.get("2604.00001").change_seq == store.last_change_seq() == seq + 1
    assert store.get("2604.00002").trending_score == NO_SIGNAL
