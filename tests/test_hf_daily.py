"""`paperwire import hf-daily`: a saved Hugging Face /api/daily_papers response into the store."""

from __future__ import annotations

import copy
import gzip
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest
from huggingface_hub.hf_api import PaperInfo

from paperwire.ingest.base import IngestError
from paperwire.ingest.hf_daily import import_file, import_items, parse_item, read_items
from paperwire.models import Author, Paper, Tombstone
from paperwire.store import Store
from paperwire.store import votes as v
from paperwire.store.store import StoredPaper
from paperwire.trending import NO_SIGNAL, trending_key
from paperwire.web.api.serialize import hf_item

FIXTURE = Path(__file__).parent / "fixtures" / "hf" / "daily_papers.json"
SAMPLE = Path(__file__).parents[1] / "paperwire" / "sample" / "papers.jsonl.gz"
ROOT = Path(__file__).parents[1]


@pytest.fixture(autouse=True)
def _half_life(monkeypatch) -> None:
    monkeypatch.setenv("PAPERWIRE_TRENDING_HALF_LIFE_HOURS", "24")


def fixture_items() -> list[dict]:
    return orjson.loads(FIXTURE.read_bytes())


def test_the_fixture_reads_like_huggingface_hub_reads_it():
    """Every usable item gives the id, votes and submission time that huggingface_hub's PaperInfo gives."""
    items, rejected = read_items(FIXTURE.read_bytes())
    assert len(items) == 13
    assert [(r.where, r.reason) for r in rejected] == [("item 8", "not an arXiv id: '2604.0343'")]
    raw = [item for item in fixture_items() if item["paper"]["id"] != "2604.0343"]
    for got, item in zip(items, raw, strict=True):
        info = PaperInfo(**copy.deepcopy(item))
        assert got.paper.id == info.id
        assert got.upvotes == (info.upvotes or 0)
        assert got.paper.title == info.title
        assert [a.name for a in got.paper.authors] == [a.name for a in info.authors]
        assert got.paper.published == info.published_at
        submitted = item["paper"].get("submittedOnDailyAt")
        if submitted:
            assert got.submitted_at.isoformat()[:23] == submitted[:23]
        else:  # our own API's shape: PaperInfo's submitted_at is the item's publishedAt
            assert got.submitted_at == info.submitted_at
        assert got.day == got.submitted_at.date()


def test_import_into_an_empty_catalogue(store: Store):
    result = import_file(store, FIXTURE)
    assert (result.read, result.new_papers, result.known_papers) == (13, 13, 0)
    assert (result.listed, result.already_listed, result.changed) == (13, 0, 13)
    assert [s.where for s in result.skipped] == ["item 8"]

    top = store.get("2604.03438")
    assert top.title.startswith("Android Instrumentation Testing")
    assert (top.upvotes, top.external_upvotes, top.votes) == (0, 41, 41)
    assert top.source == "hf-daily" and top.categories == []
    entry = v.daily_entry(store, "2604.03438")
    assert entry.day == date(2026, 4, 6) and entry.submitter_name == "paper-scout"
    assert entry.submitted_by is None
    assert top.trending_score == pytest.approx(trending_key([], entry.submitted_at, 41), abs=1e-9)
    # our own API's shape: upvotes outside the paper, listed on the item's publishedAt
    own = store.get("2501.17461")
    assert own.external_upvotes == 4
    assert v.daily_entry(store, "2501.17461").day == date(2026, 4, 7)

    day, total = v.daily_list(store, date(2026, 4, 6), date(2026, 4, 6))
    assert total == 9
    assert [p.votes for p, _ in day] == [41, 27, 19, 12, 9, 6, 3, 2, 0]
    week, total = v.daily_list(store, date(2026, 4, 1), date(2026, 4, 7), limit=3)
    assert total == 13 and [p.id for p, _ in week] == ["2604.03438", "2405.11454", "2507.10541"]
    ranked, _ = v.trending(store, None, limit=20)
    # 33 votes listed on the 7th outrank 41 listed a day earlier (worth 20.5 a day later)
    assert [p.id for p in ranked[:2]] == ["2405.11454", "2604.03438"]


def test_reimport_changes_nothing(store: Store):
    import_file(store, FIXTURE)
    seq = store.last_change_seq()
    result = import_file(store, FIXTURE)
    assert (result.new_papers, result.known_papers, result.listed, result.already_listed) == (0, 13, 0, 13)
    assert result.changed == 0
    assert store.last_change_seq() == seq


def test_new_counts_update_votes_but_keep_the_listing(store: Store):
    import_file(store, FIXTURE)
    first = v.daily_entry(store, "2604.03438")
    items, _ = read_items(FIXTURE.read_bytes())
    later = items[0].__class__(
        items[0].paper, date(2026, 4, 9), datetime(2026, 4, 9, tzinfo=UTC), "someone", 57
    )
    result = import_items(store, [later])
    assert (result.changed, result.already_listed) == (1, 1)
    assert store.get("2604.03438").external_upvotes == 57
    assert v.daily_entry(store, "2604.03438") == first, "a paper is listed once, ever"


def test_richer_arxiv_metadata_is_never_clobbered(store: Store):
    with gzip.open(SAMPLE) as f:
        sample = {r["id"]: r for r in map(orjson.loads, f)}
    r = sample["2507.10541"]
    rich = Paper(
        id=r["id"],
        title=r["title"],
        version=r["version"],
        abstract=r["abstract"],
        authors=[Author(a["name"]) for a in r["authors"]],
        categories=r["categories"],
        published=datetime.fromisoformat(r["published"]),
        updated=datetime.fromisoformat(r["updated"]),
        comments="17 pages",
        journal_ref="Proc. of Somewhere 2025",
        source="snapshot",
    )
    store.apply([rich])
    before = store.get("2507.10541")
    uid = _user(store)
    v.upvote(store, uid, "2507.10541", datetime(2026, 4, 6, 9, tzinfo=UTC))
    result = import_file(store, FIXTURE)
    assert (result.new_papers, result.known_papers) == (12, 1)
    after = store.get("2507.10541")
    for field in (
        "title",
        "version",
        "abstract",
        "authors",
        "categories",
        "comments",
        "journal_ref",
        "source",
    ):
        assert getattr(after, field) == getattr(before, field), field
    assert (after.upvotes, after.external_upvotes, after.votes) == (1, 27, 28)

    # and an arXiv record arriving after the Hub's replaces the Hub's thinner one
    hf_only = store.get("2604.03438")
    arxiv = Paper(
        id="2604.03438",
        title=hf_only.title,
        abstract=hf_only.abstract,
        authors=hf_only.authors,
        categories=["cs.SE"],
        published=hf_only.published,
        updated=hf_only.published,
        source="arxiv-api",
    )
    assert store.apply([arxiv]).updated == 1
    merged = store.get("2604.03438")
    assert merged.categories == ["cs.SE"] and merged.source == "arxiv-api"
    assert merged.external_upvotes == 41, "votes are not content: a metadata update keeps them"


def _user(store: Store) -> int:
    from sqlalchemy import insert

    from paperwire.store.schema import users

    with store._writer.begin() as conn:
        return conn.execute(
            insert(users).values(email="hf@example.org", created_at=datetime.now(UTC)).returning(users.c.id)
        ).scalar_one()


def test_a_paper_submitted_here_keeps_its_entry(store: Store):
    store.apply([Paper("2604.03438", "Android instrumentation", published=datetime(2026, 4, 3, tzinfo=UTC))])
    uid = _user(store)
    mine = v.submit_daily(store, "2604.03438", date(2026, 4, 4), uid, datetime(2026, 4, 4, 8, tzinfo=UTC))
    result = import_file(store, FIXTURE)
    assert result.already_listed == 1
    assert v.daily_entry(store, "2604.03438") == mine
    assert store.get("2604.03438").external_upvotes == 41
    assert store.get("2604.03438").title == "Android instrumentation"


def test_deleted_papers_stay_deleted(store: Store):
    store.apply([Paper("2604.03438", "Android instrumentation")])
    store.apply([Tombstone("2604.03438")])
    result = import_file(store, FIXTURE)
    assert ("paper 2604.03438", "deleted from the catalogue") in [(s.where, s.reason) for s in result.skipped]
    assert store.get("2604.03438") is None
    assert v.daily_entry(store, "2604.03438") is None
    assert result.new_papers == 12


def test_hidden_papers_still_get_their_counts(store: Store):
    store.apply([Paper("2604.03438", "Android instrumentation")])
    v.set_hidden(store, "2604.03438", True)
    import_file(store, FIXTURE)
    got = store.get("2604.03438")
    assert got.hidden and got.external_upvotes == 41 and got.trending_score != NO_SIGNAL
    assert "2604.03438" not in {p.id for p, _ in v.daily_list(store, date(2026, 4, 6), date(2026, 4, 6))[0]}


def test_our_own_api_shape_round_trips():
    stored = StoredPaper(
        id="2401.14040",
        title="A title",
        abstract="Line one\nline two.",
        authors=[Author("Ada Lovelace")],
        published=datetime(2024, 1, 25, 9, 11, 23, tzinfo=UTC),
    )
    item = parse_item(orjson.loads(orjson.dumps(hf_item(stored))))
    assert (item.paper.id, item.paper.title, item.upvotes) == ("2401.14040", "A title", 0)
    assert item.submitted_at == stored.published and item.day == date(2024, 1, 25)
    assert [a.name for a in item.paper.authors] == ["Ada Lovelace"]


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (3, "an item must be an object"),
        ({"paper": []}, "'paper' must be an object"),
        ({"paper": {"title": "No id", "publishedAt": "2024-01-25T00:00:00.000Z"}}, "missing paper id"),
        ({"paper": {"id": "24.1", "title": "T", "publishedAt": "2024-01-25"}}, "not an arXiv id"),
        ({"paper": {"id": "2401.14040", "publishedAt": "2024-01-25"}}, "missing title"),
        ({"paper": {"id": "2401.14040", "title": "T"}}, "cannot tell which day"),
        ({"paper": {"id": "2401.14040", "title": "T", "publishedAt": "yesterday"}}, "not a timestamp"),
        ({"paper": {"id": "2401.14040", "title": "T", "publishedAt": 20240125}}, "must be a timestamp"),
        (
            {"paper": {"id": "2401.14040", "title": "T", "publishedAt": "2024-01-25", "upvotes": "9"}},
            "upvotes",
        ),
        (
            {"paper": {"id": "2401.14040", "title": "T", "publishedAt": "2024-01-25", "upvotes": -1}},
            "upvotes",
        ),
        (
            {"paper": {"id": "2401.14040", "title": "T", "publishedAt": "2024-01-25", "authors": "Ada"}},
            "authors",
        ),
    ],
)
def test_malformed_items_say_why(item, reason):
    with pytest.raises(ValueError, match=reason):
        parse_item(item)


def test_versioned_ids_and_jsonl(tmp_path):
    good = {
        "paper": {"id": "2401.14040v2", "title": "T", "upvotes": 3},
        "publishedAt": "2024-01-26T04:00:00Z",
    }
    lines = [orjson.dumps(good), b"{not json", b"", orjson.dumps({"paper": {"id": "x"}})]
    items, rejected = read_items(b"\n".join(lines))
    assert [i.paper.id for i in items] == ["2401.14040"] and items[0].day == date(2024, 1, 26)
    assert [r.where for r in rejected] == ["line 2", "line 4"]


def test_unreadable_files_fail_as_a_whole(store: Store, tmp_path):
    for data in (b'[{"paper": {"id": "2401.1', b"42", b"just text", b""):
        path = tmp_path / "daily.json"
        path.write_bytes(data)
        with pytest.raises(IngestError):
            import_file(store, path)
    with pytest.raises(IngestError, match="cannot read"):
        import_file(store, tmp_path / "missing.json")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "paperwire.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_cli(env, tmp_path):
    proc = _cli(env, "import", "hf-daily", str(FIXTURE))
    assert proc.returncode == 0, proc.stderr
    assert "13 papers read: 13 new" in proc.stdout
    assert "13 put on their day's list" in proc.stdout
    assert "item 8: not an arXiv id" in proc.stderr
    assert "13 papers searchable" in proc.stdout

    store = Store.open(env["PAPERWIRE_DATABASE_URL"])
    try:
        assert store.get("2405.11454").external_upvotes == 33
    finally:
        store.close()

    proc = _cli(env, "import", "hf-daily", str(FIXTURE), "--no-index")
    assert proc.returncode == 0 and "0 new, 13 already in the catalogue" in proc.stdout

    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps([{"paper": {"id": "nope"}}, 3]))
    proc = _cli(env, "import", "hf-daily", str(bad))
    assert proc.returncode == 1
    assert "item 1: not an arXiv id" in proc.stderr and "item 2:" in proc.stderr
    assert "nothing could be imported" in proc.stderr

    bad.write_bytes(b'[{"paper": ')
    proc = _cli(env, "import", "hf-daily", str(bad))
    assert proc.returncode == 1 and "not a JSON list of daily papers" in proc.stderr
