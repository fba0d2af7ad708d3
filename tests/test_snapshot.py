"""The arXiv metadata snapshot, on the first 200 real lines of arXiv's own file."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import orjson
import pytest

from paperwire.ingest.runner import run_import
from paperwire.ingest.snapshot import SnapshotSource, parse_version_date
from paperwire.models import Paper, Rejected

SNAPSHOT = "snapshot/arxiv-metadata-oai-snapshot.head200.jsonl"


def load(fixtures) -> dict[str, Paper]:
    items = list(SnapshotSource(fixtures / SNAPSHOT).items())
    assert all(isinstance(i, Paper) for i in items)
    return {p.id: p for p in items}


def test_every_line_parses(fixtures):
    papers = load(fixtures)
    assert len(papers) == 200
    for p in papers.values():
        assert p.title and "\n" not in p.title and not p.title.startswith(" ")
        assert p.abstract and not p.abstract.startswith(" ")
        assert p.authors and p.categories and p.published and p.updated
        assert p.published <= p.updated
        assert p.version >= 1


def test_first_record_fields(fixtures):
    p = load(fixtures)["0704.0001"]
    assert p.title == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert p.version == 2
    assert [a.name for a in p.authors] == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"]
    assert p.categories == ["hep-ph"]
    assert p.published == datetime(2007, 4, 2, 19, 18, 42, tzinfo=UTC)
    assert p.updated == datetime(2007, 7, 24, 20, 10, 27, tzinfo=UTC)
    assert p.metadata_date == "2008-11-26"
    assert p.doi == "10.1103/PhysRevD.76.013009"
    assert p.journal_ref == "Phys.Rev.D76:013009,2007"
    assert p.report_no == "ANL-HEP-PR-07-12"
    assert p.comments == "37 pages, 15 figures; published version"
    assert p.license is None
    assert "\n" not in p.abstract and p.abstract.startswith("A fully differential calculation")


def test_affiliations_from_authors_parsed(fixtures):
    p = load(fixtures)["0704.0044"]
    assert (p.authors[0].name, p.authors[0].affiliation) == ("A. A. Schekochihin", "Oxford")


def test_multiple_categories_primary_first(fixtures):
    p = load(fixtures)["0704.0002"]
    assert p.categories == ["math.CO", "cs.CG"]
    assert p.primary_category == "math.CO"
    assert p.license == "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"


def test_paragraphs_survive(fixtures):
    p = load(fixtures)["0704.0010"]
    first, second = p.abstract.split("\n")
    assert first.endswith("known results are given.") and second.startswith(
        "The operations of Cartesian product"
    )


def test_version_dates():
    assert parse_version_date("Sat, 31 Mar 2007 02:26:18 GMT") == datetime(2007, 3, 31, 2, 26, 18, tzinfo=UTC)
    assert parse_version_date("Sat, 31 Mar 2007 02:26:18 +0100") == datetime(
        2007, 3, 31, 1, 26, 18, tzinfo=UTC
    )


def test_bad_lines_are_skipped_with_line_numbers(fixtures, tmp_path):
    lines = (fixtures / SNAPSHOT).read_bytes().splitlines()[:5]
    bad = [
        lines[0],
        b"{not json",
        orjson.dumps({"id": "nonsense", "title": "x"}),
        b"",
        orjson.dumps({"id": "0704.0099", "title": "  "}),
        b"[1, 2]",
        orjson.dumps(
            {"id": "0704.0098", "title": "T", "versions": [{"version": "v1", "created": "yesterday"}]}
        ),
        lines[1],
    ]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(bad) + b"\n")
    items = list(SnapshotSource(path).items())
    rejected = [(i.where, i.reason) for i in items if isinstance(i, Rejected)]
    assert [w for w, _ in rejected] == ["line 2", "line 3", "line 5", "line 6", "line 7"]
    assert "invalid JSON" in rejected[0][1]
    assert "not an arXiv id" in rejected[1][1]
    assert "missing title" in rejected[2][1]
    assert [i.id for i in items if isinstance(i, Paper)] == ["0704.0001", "0704.0002"]


def test_gzip_and_truncated_gzip(fixtures, tmp_path):
    raw = (fixtures / SNAPSHOT).read_bytes()
    gz = tmp_path / "s.jsonl.gz"
    gz.write_bytes(gzip.compress(raw))
    assert sum(isinstance(i, Paper) for i in SnapshotSource(gz).items()) == 200
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(raw)[: len(gzip.compress(raw)) // 2])
    items = list(SnapshotSource(cut).items())
    assert isinstance(items[-1], Rejected) and "could not be read" in items[-1].reason
    assert 0 < sum(isinstance(i, Paper) for i in items) < 200


def test_import_into_store_is_idempotent(fixtures, store):
    first = run_import(store, SnapshotSource(fixtures / SNAPSHOT).items(), batch_size=64)
    assert (first.imported, first.skipped) == (200, 0)
    seq = store.last_change_seq()
    again = run_import(store, SnapshotSource(fixtures / SNAPSHOT).items(), batch_size=64)
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 200)
    assert store.last_change_seq() == seq == 200
    assert store.get("0704.0001").authors[0].name == "C. Balázs"


@pytest.mark.parametrize("batch_size", [7, 5000])
def test_older_snapshot_never_overwrites_newer(fixtures, sqlite_store, tmp_path, batch_size):
    line = orjson.loads((fixtures / SNAPSHOT).read_bytes().splitlines()[0])
    newer = dict(
        line,
        title="Newer title",
        versions=line["versions"] + [{"version": "v3", "created": "Mon, 1 Jan 2024 00:00:00 GMT"}],
    )
    path_new, path_old = tmp_path / "new.jsonl", tmp_path / "old.jsonl"
    path_new.write_bytes(orjson.dumps(newer) + b"\n")
    path_old.write_bytes(orjson.dumps(line) + b"\n")
    run_import(sqlite_store, SnapshotSource(path_new).items(), batch_size=batch_size)
    summary = run_import(sqlite_store, SnapshotSource(path_old).items(), batch_size=batch_size)
    assert summary.unchanged == 1
    p = sqlite_store.get("0704.0001")
    assert (p.version, p.title) == (3, "Newer title")
