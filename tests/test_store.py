"""The store on SQLite and on a real PostgreSQL: upsert rules, change sequence, state, migrations."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from paperwire.models import Author, Paper, Tombstone
from paperwire.store import Store
from paperwire.store.schema import metadata


def paper(pid: str = "2401.00001", **kw) -> Paper:
    base = dict(
        id=pid,
        title="Speculative decoding for fast inference",
        abstract="We study speculative decoding.",
        authors=[Author("Ada Lovelace", "Analytical Engines Ltd"), Author("Alan Turing")],
        categories=["cs.CL", "cs.LG"],
        published=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        updated=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        source="test",
    )
    base.update(kw)
    return Paper(**base)


def test_insert_then_reimport_changes_nothing(store: Store):
    r = store.apply([paper(), paper("hep-th/9901001", categories=["hep-th"])])
    assert (r.imported, r.updated, r.unchanged) == (2, 0, 0)
    seq = store.last_change_seq()
    assert seq == 2
    r = store.apply([paper(), paper("hep-th/9901001", categories=["hep-th"])])
    assert (r.imported, r.updated, r.unchanged) == (0, 0, 2)
    assert store.last_change_seq() == seq
    got = store.get("hep-th/9901001")
    assert got is not None and got.categories == ["hep-th"] and got.primary_category == "hep-th"


def test_round_trip_keeps_every_field(store: Store):
    p = paper(
        comments="12 pages",
        journal_ref="Phys. Rev. D 1 (2024)",
        doi="10.1/abc",
        report_no="REP-1",
        license="http://creativecommons.org/licenses/by/4.0/",
        metadata_date="2024-02-01",
        version=3,
        title="<b>Bold</b> & $x<y$",
    )
    store.apply([p])
    got = store.get(p.id)
    for f in dataclasses.fields(Paper):
        assert getattr(got, f.name) == getattr(p, f.name), f.name
    assert got.authors[0].affiliation == "Analytical Engines Ltd"


def test_get_many_reads_what_get_reads_and_leaves_out_deleted_and_hidden(store: Store):
    from paperwire.store.votes import set_hidden

    store.apply(
        [
            paper(comments="12 pages", doi="10.1/abc", version=2, title="<b>Bold</b> & $x<y$"),
            paper("hep-th/9901001", categories=["hep-th"], published=None, updated=None),
            paper("2401.00002"),
            paper("2401.00003"),
        ]
    )
    store.apply([Tombstone("2401.00002")])
    set_hidden(store, "2401.00003", True)
    wanted = ["2401.00001", "hep-th/9901001", "2401.00002", "2401.00003", "2401.99999"]
    found = store.get_many(wanted)
    assert sorted(found) == ["2401.00001", "hep-th/9901001"]
    for pid, got in found.items():
        assert got == store.get(pid)  # every field, timestamps (UTC) and flags included
    assert found["2401.00001"].published == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert found["2401.00001"].hidden is False and found["2401.00001"].deleted is False
    assert found["hep-th/9901001"].published is None
    with_hidden = store.get_many(wanted, include_hidden=True)
    assert sorted(with_hidden) == ["2401.00001", "2401.00003", "hep-th/9901001"]
    assert with_hidden["2401.00003"].hidden is True
    assert store.get_many([]) == {}
    many = [f"2402.{i:05d}" for i in range(2000)]  # more than one IN (...) chunk
    store.apply([paper(pid) for pid in many])
    assert sorted(store.get_many(many)) == many


def test_newer_version_replaces_older_never_the_reverse(store: Store):
    store.apply([paper(version=1, title="Old", report_no="R-1")])
    r = store.apply([paper(version=2, title="New", updated=datetime(2024, 3, 1, tzinfo=UTC))])
    assert r.updated == 1
    got = store.get("2401.00001")
    assert (got.version, got.title) == (2, "New")
    assert got.report_no == "R-1", "a newer record keeps what its source does not carry"
    seq = store.last_change_seq()
    r = store.apply([paper(version=1, title="Old again")])
    assert r.unchanged == 1
    assert store.get("2401.00001").title == "New"
    assert store.last_change_seq() == seq


def test_same_version_only_fills_gaps(store: Store):
    store.apply([paper(doi=None, title="Kept")])
    r = store.apply([paper(doi="10.5/x", title="Other title from another source")])
    assert r.updated == 1
    got = store.get("2401.00001")
    assert got.doi == "10.5/x" and got.title == "Kept"


def test_every_change_bumps_sequence_and_changes_since_sees_it(store: Store):
    store.apply([paper(f"2401.0000{i}") for i in range(1, 6)])
    assert [p.change_seq for p in store.changes_since(0)] == [1, 2, 3, 4, 5]
    store.apply([paper("2401.00002", version=2, updated=datetime(2025, 1, 1, tzinfo=UTC))])
    changed = store.changes_since(5)
    assert [(p.id, p.change_seq) for p in changed] == [("2401.00002", 6)]
    assert [p.change_seq for p in store.changes_since(0, limit=2)] == [1, 3]


def test_tombstone_hides_paper_and_is_a_change(store: Store):
    store.apply([paper()])
    r = store.apply([Tombstone("2401.00001", "2024-05-01")])
    assert r.deleted == 1
    assert store.get("2401.00001") is None
    assert store.get("2401.00001", include_deleted=True).deleted
    assert store.count() == 0
    assert store.changes_since(1)[0].deleted
    assert store.apply([Tombstone("2401.00001")]).unchanged == 1
    assert store.apply([Tombstone("9999.99999")]).unchanged == 1


def test_duplicates_inside_one_batch(store: Store):
    r = store.apply([paper(), paper(), paper(version=2, updated=datetime(2024, 5, 1, tzinfo=UTC))])
    assert (r.imported, r.unchanged, r.updated) == (1, 1, 1)
    assert store.get("2401.00001").version == 2
    assert store.last_change_seq() == 1


def test_state_documents(store: Store):
    assert store.get_state("harvest:x") is None
    store.set_state("harvest:x", {"from": "2024-01-01"})
    store.set_state("harvest:x", {"from": "2024-02-01"})
    assert store.get_state("harvest:x") == {"from": "2024-02-01"}
    assert store.stats().states["harvest:x"] == {"from": "2024-02-01"}


def test_stats(store: Store):
    store.apply([paper("2401.00001"), paper("2401.00002"), paper("2401.00003", categories=["math.CO"])])
    s = store.stats()
    assert s.papers == 3
    assert s.by_category[0] == ("cs.CL", 2)
    assert s.newest_published == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


# SQLite cannot reflect an index on an expression, so there the DOI index is checked by the query plan.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_migrations_match_the_schema(store: Store):
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_papers_are_found_by_doi_in_any_case_through_an_index(store: Store):
    store.apply(
        [
            paper("2401.00001", doi="10.1103/PhysRevD.76.013009"),
            paper("2401.00002", doi="10.1103/physrevd.76.013009"),
            paper("2401.00003", doi="10.1000/other"),
            paper("2401.00004"),
        ]
    )
    store.apply([Tombstone("2401.00003", source="test")])
    found = store.ids_by_doi(["10.1103/PHYSREVD.76.013009", "10.1000/other", "10.1000/none"])
    assert found == {"10.1103/physrevd.76.013009": ["2401.00001", "2401.00002"]}
    assert store.ids_by_doi([]) == {}
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM papers WHERE lower(doi) IN ('10.1000/x')"
            ).all()
        assert "ix_papers_doi_lower" in str(plan)


def test_reopen_is_idempotent(db_url):
    Store.open(db_url).close()
    s = Store.open(db_url)
    assert s.count() == 0
    s.close()


def test_same_day_record_with_later_metadata_date_wins():
    """OAI-PMH gives dates only: a record updated the same day but with newer metadata must win."""
    from paperwire.store.merge import merge

    api = paper(
        version=2, updated=datetime(2024, 1, 2, 15, 30, tzinfo=UTC), journal_ref=None, metadata_date=None
    )
    oai = paper(
        version=2,
        updated=datetime(2024, 1, 2, tzinfo=UTC),
        journal_ref="JHEP 1 (2025)",
        metadata_date="2025-03-01",
    )
    assert merge(api, oai).journal_ref == "JHEP 1 (2025)"
    assert merge(merge(api, oai), api).journal_ref == "JHEP 1 (2025)"


def test_older_record_fills_version_independent_gaps_only():
    from paperwire.store.merge import merge

    new = paper(version=3, title="v3 title", doi=None, comments="v3 comments")
    old = paper(version=1, title="v1 title", doi="10.1/old", comments="v1 comments")
    merged = merge(new, old)
    assert (merged.version, merged.title, merged.comments, merged.doi) == (
        3,
        "v3 title",
        "v3 comments",
        "10.1/old",
    )


def test_concurrent_writers_and_a_catching_up_reader_miss_nothing(db_url):
    """Several writer connections at once; a reader that follows change_seq sees every change exactly once.

    This is what lets each node keep its own search index in step with a shared PostgreSQL store."""
    import threading

    writers = [Store.open(db_url) for _ in range(3)]
    reader = Store.open(db_url)
    batches, per_batch = 8, 25
    done = threading.Event()
    seen: dict[str, int] = {}
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for b in range(batches):
                writers[n].apply(
                    [paper(f"24{n + 1:02d}.{b * per_batch + i + 1:05d}") for i in range(per_batch)]
                )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def follow() -> None:
        watermark = 0
        while True:
            finished = done.is_set()
            for p in reader.changes_since(watermark, limit=50):
                assert p.id not in seen, f"{p.id} delivered twice"
                seen[p.id] = p.change_seq
                watermark = p.change_seq
            if finished and watermark == reader.last_change_seq():
                return

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    follower = threading.Thread(target=follow)
    follower.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    follower.join(timeout=60)
    assert not errors
    total = 3 * batches * per_batch
    assert len(seen) == total
    assert sorted(seen.values()) == list(range(1, total + 1))
    for s in [*writers, reader]:
        s.close()


@pytest.mark.parametrize("web_threads", [None, "7"])
def test_sqlite_readers_on_several_threads_reuse_the_pools_connections(tmp_path, monkeypatch, web_threads):
    """A web process's request threads, all reading at once, round after round, share the pool's
    connections: none is closed on return and opened again (a new SQLite connection re-reads the schema
    and starts with an empty page cache)."""
    import threading

    from sqlalchemy import event

    from paperwire.store.engine import sqlite_pool_size

    if web_threads:
        monkeypatch.setenv("PAPERWIRE_WEB_THREADS", web_threads)
    SQLITE_POOL_SIZE = sqlite_pool_size()
    assert int(web_threads or 4) + 2 == SQLITE_POOL_SIZE  # request threads + follower + mail worker
    sqlite_store = Store.open(f"sqlite:///{tmp_path / 'pool.db'}")
    sqlite_store.apply([Paper(id=f"2401.{i:05d}", title=f"T{i}", abstract="A.") for i in range(20)])
    sqlite_store.engine.dispose()
    opened = []
    event.listen(sqlite_store.engine, "connect", lambda *_: opened.append(1))
    together = threading.Barrier(SQLITE_POOL_SIZE)

    def read() -> None:
        for _ in range(5):
            with sqlite_store.engine.connect() as conn:
                together.wait()  # every thread holds a connection at this moment
                assert conn.exec_driver_sql("SELECT count(*) FROM papers").scalar() == 20
            assert len(sqlite_store.get_many([f"2401.{i:05d}" for i in range(10)])) == 10
            together.wait()

    threads = [threading.Thread(target=read) for _ in range(SQLITE_POOL_SIZE)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(opened) == SQLITE_POOL_SIZE
    sqlite_store.close()
