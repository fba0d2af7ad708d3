"""The arXiv API source: feed parsing on recorded responses (current and 2016 layouts), and paging,
retries, politeness and imports against a real HTTP server replaying those responses."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from paperwire.config import get_settings
from paperwire.ingest.arxiv_api import ArxivAPIError, ArxivAPISource, parse_feed, repair_mojibake
from paperwire.ingest.base import SOURCES, IngestError
from paperwire.ingest.runner import run_import
from paperwire.models import Paper, Rejected
from paperwire.store import Store
from tests.conftest import FIXTURES
from tests.recorded_server import RecordedServer, Reply

API = FIXTURES / "arxiv-api"
RECORDED = sorted((API / "recorded_xml").glob("*.xml"))
LEGACY = sorted((API / "legacy_xml").glob("*.xml"))
PATH = "/api/query"
TESTING_PAGES = (0, 10, 20, 30, 40, 50)


def recorded(stem: str) -> Path:
    """The recorded response whose name starts with ``stem`` (names end in a hash of the request)."""
    (path,) = (API / "recorded_xml").glob(f"{stem}_*.xml")
    return path


def body(stem: str) -> bytes:
    return recorded(stem).read_bytes()


def opensearch(xml: str, name: str) -> int:
    """Read an opensearch value straight from the text, independently of the parser under test."""
    m = re.search(rf"<opensearch:{name}[^>]*>\s*(\d+)\s*<", xml)
    assert m, name
    return int(m.group(1))


def entry_ids(xml: str) -> list[str]:
    return re.findall(r"<entry>\s*<id>https?://arxiv\.org/abs/([^<]+)</id>", xml)


def papers(items) -> list[Paper]:
    assert all(isinstance(i, Paper) for i in items), [i for i in items if not isinstance(i, Paper)]
    return list(items)


def without_entries(xml: bytes) -> bytes:
    """The same page as arXiv sometimes serves it: right totals, no entries."""
    return re.sub(rb"\s*<entry>.*?</entry>", b"", xml, flags=re.S)


# --- parse_feed on every recorded response -----------------------------------------------------------


@pytest.mark.parametrize("path", RECORDED + LEGACY, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_recorded_feed_parses(path: Path):
    xml = path.read_text(encoding="utf-8")
    if "/api/errors#" in xml:
        with pytest.raises(ArxivAPIError):
            parse_feed(xml)
        return
    page = parse_feed(path.read_bytes())
    assert page.total == opensearch(xml, "totalResults")
    assert page.start == opensearch(xml, "startIndex")
    assert page.items_per_page == opensearch(xml, "itemsPerPage")
    got = papers(page.items)
    assert [f"{p.id}v{p.version}" for p in got] == entry_ids(xml)
    for p in got:
        assert p.title and "\n" not in p.title and p.title == p.title.strip()
        assert p.abstract and p.authors and p.categories
        assert p.published and p.updated and p.published <= p.updated
        assert p.source == "arxiv_api" and p.metadata_date is None
        assert len(set(p.categories)) == len(p.categories)


def test_recorded_json_holds_the_same_responses():
    for path in sorted((API / "recorded_json").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["body"] == (API / "recorded_xml" / f"{path.stem}.xml").read_text(encoding="utf-8")
        assert data["status_code"] == (400 if path.stem.startswith("id_abc_") else 200)


def test_old_style_id_with_affiliations():
    (p,) = papers(parse_feed(body("id_astro-ph_0601001_s0_m100")).items)
    assert (p.id, p.version) == ("astro-ph/0601001", 1)
    assert p.title.startswith("Frequency of Hot Jupiters and Very Hot Jupiters")
    assert [(a.name, a.affiliation) for a in p.authors] == [
        ("Andrew Gould", "Ohio State"),
        ("Susan Dorsher", "Ohio State"),
        ("B. Scott Gaudi", "CfA"),
        ("Andrzej Udalski", "Warsaw University Observatory"),
    ]
    assert p.journal_ref == "ActaAstron.56:1-50,2006"
    assert p.comments.startswith("62 pages including 16 figures and 9 tables.")
    assert p.primary_category == "astro-ph" and p.categories == ["astro-ph"]
    assert p.published == p.updated == datetime(2006, 1, 2, 14, 57, 58, tzinfo=UTC)
    assert p.abstract.startswith("We derive the frequencies") and "Gould & Morgan" in p.abstract
    assert p.doi is None


def test_old_style_id_with_version():
    (p,) = papers(parse_feed(body("id_quant-ph_0201082v1_s0_m100")).items)
    assert (p.id, p.version) == ("quant-ph/0201082", 1)
    assert p.categories == ["quant-ph", "cs.PL"]
    assert [a.name for a in p.authors] == ["Stephen Blaha"] and p.authors[0].affiliation is None
    assert p.comments == "32 pages" and p.journal_ref is None


def test_legacy_layout_with_wrapped_title_and_doi():
    page = parse_feed((API / "legacy_xml" / "id_list_1111.2011v2.xml").read_bytes())
    assert (page.total, page.start, page.items_per_page) == (1, 0, 10)
    (p,) = papers(page.items)
    assert (p.id, p.version) == ("1111.2011", 2)
    assert (
        p.title == "Quantum Criticality for Extended Nodes on a Bethe Lattice in the Large Connectivity Limit"
    )
    assert p.doi == "10.1103/PhysRevB.85.115117"
    assert p.categories == ["cond-mat.str-el", "cond-mat.stat-mech"]
    assert [a.name for a in p.authors] == ["James M. Murray", "Adrian Del Maestro", "Zlatko Tesanovic"]
    assert p.journal_ref == "Phys. Rev. B 85, 115117 (2012)"
    assert p.comments == "8 pages, 3 figures. Published version"
    assert p.published == datetime(2011, 11, 8, 18, 48, 36, tzinfo=UTC)
    assert p.updated == datetime(2012, 4, 2, 12, 38, 54, tzinfo=UTC)
    # Hard-wrapped lines are joined into one paragraph.
    assert "\n" not in p.abstract
    assert p.abstract.startswith(
        "Theoretical description of anisotropic systems, such as layered superconductors"
    )


def test_legacy_author_search_pages():
    page = parse_feed((API / "legacy_xml" / "au_del_maestro.xml").read_bytes())
    assert (page.total, page.start, page.items_per_page, len(page.items)) == (31, 0, 10, 10)
    got = papers(page.items)
    # arXiv matches au:del_maestro on the surname, whichever way the forenames are written.
    assert all(any(a.name.endswith("Del Maestro") for a in p.authors) for p in got)
    first, second = got[0], got[1]
    assert (first.id, first.doi, first.categories) == (
        "1201.4869",
        "10.1142/S021797921244002X",
        ["cond-mat.mes-hall", "cond-mat.other"],
    )
    assert (second.id, second.primary_category) == ("cond-mat/0412498", "cond-mat.str-el")
    narrowed = parse_feed((API / "legacy_xml" / "au_del_maestro_AND_ti_quantum_criticality.xml").read_bytes())
    assert narrowed.total == 2
    assert "1111.2011" in [p.id for p in papers(narrowed.items)]
    excluded = parse_feed(
        (API / "legacy_xml" / "au_del_maestro_ANDNOT_checkerboard_or_pyrochlore.xml").read_bytes()
    )
    assert not any(re.search("checkerboard|pyrochlore", p.title, re.I) for p in papers(excluded.items))


def test_error_feed_raises_with_arxivs_message():
    with pytest.raises(ArxivAPIError, match="incorrect id format for abc") as info:
        parse_feed(body("id_abc_s0_m100"))
    assert str(info.value) == "arXiv API error: incorrect id format for abc"
    assert isinstance(info.value, IngestError)


@pytest.mark.parametrize("stem", ["id_0000.0000_s0_m100", "id_0808.05394_s0_m100"])
def test_zero_results_is_an_empty_page(stem: str):
    page = parse_feed(body(stem))
    assert (page.total, page.items) == (0, [])


def test_unknown_ids_are_left_out_of_a_list():
    (p,) = papers(parse_feed(body("id_0808.05394_1707.08567_s0_m100")).items)
    assert p.id == "1707.08567" and len(p.authors) == 34


def test_smaller_pages_are_slices_of_the_big_page():
    big = [p.id for p in papers(parse_feed(body("q_testing_s0_m100")).items)]
    assert len(big) == len(set(big)) == 100
    smaller = [
        p for p in RECORDED if p.name.startswith("q_testing_") and not p.name.startswith("q_testing_s0_m100_")
    ]
    assert len(smaller) == 10
    for path in smaller:
        start, size = map(int, re.match(r"q_testing_s(\d+)_m(\d+)_", path.name).groups())
        page = parse_feed(path.read_bytes())
        assert (page.start, page.items_per_page, page.total) == (start, size, 214881)
        assert [p.id for p in papers(page.items)] == big[start : start + size], path.name


def test_paragraphs_of_one_line_summaries_are_kept():
    page = parse_feed(body("q_testing_s0_m100"))
    (p,) = [p for p in papers(page.items) if p.id == "1812.11470"]
    assert [line.split(".")[0] for line in p.abstract.split("\n")] == [
        "Context",
        "Objective",
        "Results",
        "Conclusion",
    ]


def test_mojibake_in_responses_is_repaired():
    xml = body("id_0808.05394_1707.08567_s0_m100")
    (p,) = papers(parse_feed(xml).items)
    assert "Dirk Wübben" in [a.name for a in p.authors]
    # The same response correctly encoded gives the same paper.
    clean = xml.decode("utf-8").encode("latin-1").decode("utf-8")
    assert papers(parse_feed(clean).items) == [p]
    testing = {p.id: p for p in papers(parse_feed(body("q_testing_s0_m100")).items)}
    assert [a.name for a in testing["2405.13786"].authors][:3] == [
        "Aurora Ramírez",
        "Mario Berrios",
        "José Raúl Romero",
    ]
    for genuine in ("Müller", "Ångström", "Erdős", "naïve café", "π ≈ 3.14", "plain"):
        assert repair_mojibake(genuine) == genuine


def test_bad_entries_are_rejected_not_fatal():
    xml = body("q_testing_s10_m10").decode("utf-8")
    first, second = entry_ids(xml)[:2]
    xml = xml.replace(f"<id>http://arxiv.org/abs/{first}</id>", "<id>http://arxiv.org/abs/not-an-id</id>")
    xml = re.sub(
        r"(<entry>\s*<id>http://arxiv.org/abs/" + re.escape(second) + r"</id>\s*)<title>[^<]*</title>",
        r"\1",
        xml,
    )
    page = parse_feed(xml)
    assert page.items[0] == Rejected("entry 11", "not an arXiv id: 'http://arxiv.org/abs/not-an-id'")
    assert isinstance(page.items[1], Rejected) and page.items[1].where == "entry 12"
    assert "no title" in page.items[1].reason
    assert len(papers(page.items[2:])) == 8


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Rate exceeded.",
        "<html><body>Service unavailable</body></html>",
        '<rss version="2.0"><channel><title>x</title></channel></rss>',
        '<?xml version="1.0"?><!DOCTYPE f [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><f>&b;</f>',
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>no opensearch</title></feed>',
    ],
)
def test_text_that_is_not_an_api_feed(text: str):
    with pytest.raises(IngestError) as info:
        parse_feed(text)
    assert not isinstance(info.value, ArxivAPIError)


def test_source_is_registered_and_checks_its_arguments():
    assert SOURCES["arxiv_api"] is ArxivAPISource
    with pytest.raises(ValueError, match="query"):
        ArxivAPISource()
    with pytest.raises(ValueError, match="page_size"):
        ArxivAPISource(query="x", page_size=0)
    with pytest.raises(ValueError, match="sort_by"):
        ArxivAPISource(query="x", sort_by="date")
    with pytest.raises(ValueError, match="sort_order"):
        ArxivAPISource(query="x", sort_order="up")


# --- against a real HTTP server ----------------------------------------------------------------------


@pytest.fixture
def api(recorded_server: RecordedServer, env, monkeypatch) -> RecordedServer:
    monkeypatch.setenv("PAPERWIRE_ARXIV_API_URL", recorded_server.url + PATH)
    return recorded_server


def serve_testing_pages(server: RecordedServer) -> None:
    for start in TESTING_PAGES:
        server.add(PATH, Reply(body(f"q_testing_s{start}_m10")), search_query="testing", start=str(start))


def starts(server: RecordedServer) -> list[int]:
    return [int(r.params["start"]) for r in server.requests]


def test_pages_through_a_query(api: RecordedServer):
    serve_testing_pages(api)
    source = ArxivAPISource(query="testing", page_size=10, max_results=30)
    got = papers(list(source.items()))
    big = [p.id for p in papers(parse_feed(body("q_testing_s0_m100")).items)]
    assert [p.id for p in got] == big[:30]
    assert source.total == 214881
    assert starts(api) == [0, 10, 20]
    for r in api.requests:
        assert r.path == PATH
        assert r.params["max_results"] == "10" and r.params["search_query"] == "testing"
        assert (r.params["sortBy"], r.params["sortOrder"]) == ("submittedDate", "descending")
        assert "id_list" not in r.params
        assert r.headers["User-Agent"] == get_settings().user_agent
        assert r.headers["User-Agent"].startswith("paperwire/")


def test_max_results_is_a_hard_limit(api: RecordedServer):
    # The recorded server ignores max_results, as a misbehaving upstream might.
    serve_testing_pages(api)
    source = ArxivAPISource(query="testing", page_size=10, max_results=25, sort_by="relevance")
    assert len(papers(list(source.items()))) == 25
    assert starts(api) == [0, 10, 20]
    assert [r.params["max_results"] for r in api.requests] == ["10", "10", "5"]
    assert api.requests[0].params["sortBy"] == "relevance"


def test_retry_after_is_honoured(api: RecordedServer):
    api.add(
        PATH,
        Reply("Rate exceeded.", status=503, headers={"Retry-After": "1"}, content_type="text/plain"),
        Reply(body("id_astro-ph_0601001_s0_m100")),
        id_list="astro-ph/0601001",
    )
    got = papers(list(ArxivAPISource(ids=["astro-ph/0601001"]).items()))
    assert [p.id for p in got] == ["astro-ph/0601001"]
    assert len(api.requests) == 2
    assert api.requests[1].at - api.requests[0].at >= 0.95


def test_error_feed_over_http_400(api: RecordedServer):
    api.add(PATH, Reply(body("id_abc_s0_m100"), status=400), id_list="abc")
    with pytest.raises(ArxivAPIError, match="incorrect id format for abc"):
        list(ArxivAPISource(ids=["abc"]).items())
    assert len(api.requests) == 1  # an error feed is an answer, not something to retry


def test_http_400_without_an_error_feed(api: RecordedServer):
    api.add(PATH, Reply("<html>Bad Request</html>", status=400, content_type="text/html"), id_list="abc")
    with pytest.raises(IngestError, match="HTTP 400"):
        list(ArxivAPISource(ids=["abc"]).items())


def test_id_lookup_in_chunks(api: RecordedServer):
    ids = ["astro-ph/0601001", "quant-ph/0201082v1", "1605.08386"]
    for pid in ids:
        api.add(PATH, Reply(body(f"id_{pid.replace('/', '_')}_s0_m100")), id_list=pid)
    source = ArxivAPISource(ids=ids, page_size=1)
    got = papers(list(source.items()))
    assert [p.id for p in got] == ["astro-ph/0601001", "quant-ph/0201082", "1605.08386"]
    assert [r.params["id_list"] for r in api.requests] == ids
    assert all("search_query" not in r.params for r in api.requests)
    assert source.total == 3


def test_id_list_in_one_request(api: RecordedServer):
    api.add(PATH, Reply(body("id_0808.05394_1707.08567_s0_m100")), id_list="0808.05394,1707.08567")
    source = ArxivAPISource(ids=["0808.05394", "1707.08567", "1707.08567"], query="cat:cs.IT")
    assert [p.id for p in papers(list(source.items()))] == ["1707.08567"]
    (request,) = api.requests
    assert request.params["search_query"] == "cat:cs.IT" and request.params["max_results"] == "100"


@pytest.mark.parametrize("pid", ["0000.0000", "0808.05394"])
def test_zero_results(api: RecordedServer, pid: str):
    api.add(PATH, Reply(body(f"id_{pid}_s0_m100")), id_list=pid)
    source = ArxivAPISource(ids=[pid])
    assert list(source.items()) == []
    assert source.total == 0 and len(api.requests) == 1


def test_empty_page_inside_the_results_is_retried(api: RecordedServer):
    serve_testing_pages(api)
    s10 = body("q_testing_s10_m10")
    api.add(PATH, Reply(without_entries(s10)), Reply(without_entries(s10)), Reply(s10), start="10")
    got = papers(list(ArxivAPISource(query="testing", page_size=10, max_results=30).items()))
    assert len(got) == len({p.id for p in got}) == 30
    assert starts(api) == [0, 10, 10, 10, 20]


def test_empty_pages_give_up_after_three_retries(api: RecordedServer, caplog):
    serve_testing_pages(api)
    api.add(PATH, Reply(without_entries(body("q_testing_s10_m10"))), start="10")
    with caplog.at_level(logging.WARNING, logger="paperwire.ingest.arxiv_api"):
        got = papers(list(ArxivAPISource(query="testing", page_size=10, max_results=30).items()))
    assert len(got) == 10
    assert starts(api) == [0, 10, 10, 10, 10]
    assert "empty pages" in caplog.text


def test_import_into_the_store(api: RecordedServer, store: Store):
    serve_testing_pages(api)
    first = run_import(store, ArxivAPISource(query="testing", page_size=10, max_results=30).items())
    assert (first.imported, first.updated, first.unchanged, first.skipped) == (30, 0, 0, 0)
    assert store.count() == 30
    again = run_import(store, ArxivAPISource(query="testing", page_size=10, max_results=30).items())
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 30)
    got = store.get("2202.12139")
    assert (
        got.title == "Testing Deep Learning Models: A First Comparative Study of Multiple Testing Techniques"
    )
    assert got.categories == ["cs.SE", "cs.LG"] and got.doi == "10.1109/ICSTW55395.2022.00035"
    assert [a.name for a in got.authors] == ["Mohit Kumar Ahuja", "Arnaud Gotlieb", "Helge Spieker"]
    assert got.source == "arxiv_api"


def test_requests_keep_the_configured_interval(api: RecordedServer, monkeypatch):
    monkeypatch.setenv("PAPERWIRE_HTTP_INTERVAL", "0.3")
    serve_testing_pages(api)
    assert len(list(ArxivAPISource(query="testing", page_size=10, max_results=30).items())) == 30
    arrivals = [r.at for r in api.requests]
    assert len(arrivals) == 3
    # Measured where the server saw them; 10 ms of slack for loopback jitter between two sends.
    assert all(b - a >= 0.29 for a, b in zip(arrivals, arrivals[1:], strict=False))


def test_default_interval_is_arxivs_three_seconds(monkeypatch):
    monkeypatch.delenv("PAPERWIRE_HTTP_INTERVAL", raising=False)
    assert get_settings().http_interval >= 3.0
