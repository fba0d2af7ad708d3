"""The arXiv-compatible Atom API (/api/query), driven by the real ``arxiv`` client and by our own ingest
parser, and compared with recorded responses of arXiv's real API (tests/fixtures/arxiv-api)."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import arxiv
import httpx
import pytest

from paperwire.config import get_settings
from paperwire.ingest.arxiv_api import ArxivAPIError, ArxivAPISource, parse_feed
from paperwire.models import Author, Paper
from paperwire.store import Store, StoredPaper
from tests.live_server import LiveServer, start_server

RECORDED = Path(__file__).parent / "fixtures" / "arxiv-api" / "recorded_xml"
ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
HOSTILE_TITLE = "<script>alert(1)</script> & $x<y$"

PAPERS = [
    Paper(
        id="2401.00001",
        version=2,
        title=HOSTILE_TITLE,
        abstract="First paragraph with <b>markup</b> & ampersands, $\\alpha < \\beta$.\n"
        "Second paragraph about $\\mathcal{N}=4$ & more.",
        authors=[Author("Ada <Lovelace>", "Engines & Co; Second Lab"), Author("Émilie du Châtelet")],
        categories=["cs.CL", "cs.LG"],
        published=datetime(2024, 1, 2, 10, 0, 1, tzinfo=UTC),
        updated=datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC),
        comments="12 pages, <3 figures & 2 tables",
        journal_ref="J. Hostile Stud. 1 (2024) 1-2",
        doi="10.1000/x<y>&z",
    ),
    Paper(
        id="hep-th/9901001",
        title="An old-style paper on $\\mathcal{N}=4$ gauge theory",
        abstract="Strings and branes.",
        authors=[Author("Juan Maldacena")],
        categories=["hep-th"],
        published=datetime(1999, 1, 4, 12, 0, tzinfo=UTC),
    ),
] + [
    # Published in id order; revised in the opposite order, so the two date sorts disagree.
    Paper(
        id=f"2402.{i:05d}",
        version=1 + i % 3,
        title=f"Sorting study number {i}",
        abstract="We sort papers by their dates.",
        authors=[Author("Grace Hopper")],
        categories=["cs.DS"],
        published=datetime(2024, 2, i, tzinfo=UTC),
        updated=datetime(2024, 6, 30 - i, tzinfo=UTC),
    )
    for i in range(1, 13)
]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("arxiv-api-site")
    env = {
        "PAPERWIRE_DATA_DIR": str(data),
        "PAPERWIRE_DATABASE_URL": f"sqlite:///{data / 'paperwire.db'}",
        "PAPERWIRE_IMPORT_EMBED_LIMIT": "0",
        "PAPERWIRE_SEARCH_RATE_LIMIT": "0",
        "PAPERWIRE_BASE_URL": "",
    }
    store = Store.open(env["PAPERWIRE_DATABASE_URL"])
    store.apply(PAPERS)
    store.close()
    server = start_server(env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sample_store(sample_site: LiveServer) -> Iterator[Store]:
    store = Store.open(sample_site.env["PAPERWIRE_DATABASE_URL"], run_migrations=False)
    yield store
    store.close()


def client_for(server: LiveServer, page_size: int = 100) -> arxiv.Client:
    """The real arxiv client, pointed at our server the way its docs allow (its URL format)."""
    client = arxiv.Client(page_size=page_size, delay_seconds=0, num_retries=0)
    client.query_url_format = server.url + "/api/query?{}"
    return client


def query(server: LiveServer, **params) -> httpx.Response:
    return httpx.get(server.url + "/api/query", params=params, timeout=30)


def short_id(result: arxiv.Result) -> str:
    return result.entry_id.split("/abs/", 1)[1].rsplit("v", 1)[0]


def assert_result_is(result: arxiv.Result, paper: StoredPaper, version: int | None = None) -> None:
    vid = f"{paper.id}v{version or paper.version}"
    assert result.entry_id == f"http://arxiv.org/abs/{vid}"
    assert result.title == paper.title
    assert result.summary == paper.abstract.replace("\n", "\n\n")  # paragraphs a blank line apart
    assert [a.name for a in result.authors] == [a.name for a in paper.authors]
    assert result.published == paper.published
    assert result.updated == (paper.updated or paper.published)
    assert result.categories == paper.categories
    assert result.primary_category == paper.categories[0]
    assert result.pdf_url == f"https://arxiv.org/pdf/{vid}"
    assert result.doi == paper.doi
    assert result.journal_ref == paper.journal_ref
    assert result.comment == paper.comments
    assert [(link.rel, link.content_type) for link in result.links][:2] == [
        ("alternate", "text/html"),
        ("related", "application/pdf"),
    ]


# -- the arxiv client against the sample ----------------------------------------------------------------


def test_client_search_returns_papers_with_every_field(sample_site, sample_store):
    search = arxiv.Search(query="cat:hep-th", sort_by=arxiv.SortCriterion.SubmittedDate, max_results=None)
    results = list(client_for(sample_site).results(search))
    assert len(results) == int(_total(query(sample_site, search_query="cat:hep-th"))) >= 10
    stored = sample_store.get_many([short_id(r) for r in results])
    for result in results:
        paper = stored[short_id(result)]
        assert "hep-th" in paper.categories
        assert_result_is(result, paper)
    published = [r.published for r in results]
    assert published == sorted(published, reverse=True)
    assert any(r.doi for r in results) and any(r.journal_ref for r in results)


def test_client_wildcards_as_arxiv_reads_them(sample_site, sample_store):
    """arXiv's wildcards through the real client: "au:Kho*" is every author whose name begins so."""
    results = list(
        client_for(sample_site).results(arxiv.Search(query="au:Kho* AND ti:mutat*", max_results=50))
    )
    assert results
    for result in results:
        assert any(w.lower().startswith("kho") for a in result.authors for w in a.name.split()), result.title
        assert "mutat" in result.title.lower()
    stored = sample_store.get_many([short_id(r) for r in results])
    assert len(stored) == len(results)


def test_client_id_list_keeps_order_versions_and_skips_unknown(sample_site, sample_store):
    ids = ["0704.0009", "0704.0001v1", "0704.0002", "0704.9999", "0704.0001"]
    results = list(client_for(sample_site).results(arxiv.Search(id_list=ids)))
    assert [short_id(r) for r in results] == ["0704.0009", "0704.0001", "0704.0002"]
    assert results[1].entry_id == "http://arxiv.org/abs/0704.0001v1"  # the version asked for
    for result in results:
        assert_result_is(result, sample_store.get(short_id(result)), int(result.entry_id.rsplit("v", 1)[1]))


def test_client_pages_through_a_large_result_set(sample_site):
    """April 2007 (157 papers) in pages of 20 equals one request for all of them, without repeats."""
    q = "submittedDate:[200704010000 TO 200704302359]"
    search = arxiv.Search(query=q, sort_by=arxiv.SortCriterion.SubmittedDate, max_results=None)
    paged = [r.entry_id for r in client_for(sample_site, page_size=20).results(search)]
    whole = [r.entry_id for r in client_for(sample_site, page_size=2000).results(search)]
    assert len(paged) == 157 and paged == whole and len(set(paged)) == 157
    capped = list(client_for(sample_site, page_size=20).results(arxiv.Search(query=q, max_results=45)))
    assert len(capped) == 45
    # Relevance order pages the same way: the same papers, in one consistent order.
    rel = arxiv.Search(query="all:quantum", max_results=None)
    paged = [r.entry_id for r in client_for(sample_site, page_size=7).results(rel)]
    assert paged == [r.entry_id for r in client_for(sample_site).results(rel)]
    assert len(paged) > 14


def test_sort_by_last_updated_and_ascending_orders(sample_site):
    c = client_for(sample_site)
    q = "cat:astro-ph"
    updated = list(c.results(arxiv.Search(query=q, sort_by=arxiv.SortCriterion.LastUpdatedDate)))
    stamps = [r.updated for r in updated]
    assert stamps == sorted(stamps, reverse=True)
    oldest = list(
        c.results(
            arxiv.Search(
                query=q,
                sort_by=arxiv.SortCriterion.SubmittedDate,
                sort_order=arxiv.SortOrder.Ascending,
                max_results=None,
            )
        )
    )
    assert [r.published for r in oldest] == sorted(r.published for r in oldest)
    best_first = list(c.results(arxiv.Search(query="all:galaxy", max_results=None)))
    worst_first = list(
        c.results(arxiv.Search(query="all:galaxy", sort_order=arxiv.SortOrder.Ascending, max_results=None))
    )
    assert len(best_first) > 3
    assert [r.entry_id for r in worst_first] == [r.entry_id for r in reversed(best_first)]


def test_start_max_results_and_totals(sample_site):
    q = "submittedDate:[200704010000 TO 200704302359]"
    head = ET.fromstring(query(sample_site, search_query=q, max_results=0).content)
    assert head.findtext(OPENSEARCH + "totalResults") == "157"
    assert head.findtext(OPENSEARCH + "itemsPerPage") == "0"
    assert head.findall(ATOM + "entry") == []
    page = ET.fromstring(query(sample_site, search_query=q, start=150, max_results=10).content)
    assert page.findtext(OPENSEARCH + "startIndex") == "150"
    assert page.findtext(OPENSEARCH + "itemsPerPage") == "10"
    assert len(page.findall(ATOM + "entry")) == 7
    beyond = ET.fromstring(query(sample_site, search_query=q, start=5000).content)
    assert beyond.findtext(OPENSEARCH + "totalResults") == "157" and not beyond.findall(ATOM + "entry")
    default = ET.fromstring(query(sample_site, search_query=q).content)
    assert len(default.findall(ATOM + "entry")) == 10  # arXiv's default max_results


def test_query_with_id_list_is_their_intersection(sample_site):
    ids = "0704.0001,0704.0002,0704.0009"
    r = query(sample_site, search_query="cat:hep-ph", id_list=ids)
    matched = [e.findtext(ATOM + "id") for e in ET.fromstring(r.content).findall(ATOM + "entry")]
    feed = ET.fromstring(r.content)
    assert matched and all(m.startswith("http://arxiv.org/abs/0704.000") for m in matched)
    for entry in feed.findall(ATOM + "entry"):
        assert "hep-ph" in [c.get("term") for c in entry.findall(ATOM + "category")]
    assert int(feed.findtext(OPENSEARCH + "totalResults")) == len(matched) < 3
    none = ET.fromstring(query(sample_site, search_query="cat:hep-ph", id_list="0704.9999").content)
    assert none.findtext(OPENSEARCH + "totalResults") == "0"


def test_no_query_and_no_ids_or_well_formed_unknown_ids_find_nothing(sample_site):
    for params in ({}, {"id_list": "0000.0000"}, {"id_list": "0808.05394"}):
        r = query(sample_site, **params)
        assert r.status_code == 200, params
        assert ET.fromstring(r.content).findtext(OPENSEARCH + "totalResults") == "0"
    # As arXiv answered in tests/fixtures/arxiv-api/recorded_xml/id_0808.05394_1707.08567_*: the
    # impossible id is skipped, the real one found.
    r = query(sample_site, id_list="0808.05394,0704.0001")
    assert ET.fromstring(r.content).findtext(OPENSEARCH + "totalResults") == "1"


# -- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"id_list": "abc"}, "incorrect id format for abc"),
        ({"id_list": "0704.0001,not-an-id"}, "incorrect id format for not-an-id"),
        ({"search_query": "all:x", "max_results": "2001"}, "max_results must be less than or equal to 2000"),
        ({"search_query": "all:x", "max_results": "-1"}, "max_results must be non-negative"),
        ({"search_query": "all:x", "max_results": "ten"}, "max_results must be an integer"),
        ({"search_query": "all:x", "start": "-1"}, "start must be non-negative"),
        ({"search_query": "all:x", "start": "foo"}, "start must be an integer"),
        ({"search_query": "all:x", "sortBy": "date"}, "sortBy must be in: relevance, lastUpdatedDate"),
        ({"search_query": "all:x", "sortOrder": "up"}, "sortOrder must be in: ascending, descending"),
        ({"search_query": "x" * 501}, "the query is too long"),  # raised by the engine, not the route
    ],
)
def test_errors_are_arxiv_error_feeds(sample_site, params, message):
    r = query(sample_site, **params)
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/atom+xml; charset=utf-8"
    feed = ET.fromstring(r.content)
    assert feed.findtext(OPENSEARCH + "totalResults") == "1"
    (entry,) = feed.findall(ATOM + "entry")
    assert entry.findtext(ATOM + "title") == "Error"
    assert entry.findtext(ATOM + "summary").startswith(message)
    assert entry.findtext(ATOM + "id").startswith(sample_site.url + "/api/errors#")
    assert "_".join(message.split(" ")[:3]) in entry.findtext(ATOM + "id")
    # Our own ingest reads it as arXiv's error, as it does arXiv's recorded one.
    with pytest.raises(ArxivAPIError, match=message.split(":")[0]):
        parse_feed(r.content)


def test_error_feed_has_the_shape_of_arxivs(sample_site):
    ours = ET.fromstring(query(sample_site, id_list="abc").content)
    theirs = ET.parse(RECORDED / "id_abc_s0_m100_b79c8dcf6bc3.xml").getroot()
    assert _shape(ours) == _shape(theirs)
    assert ours.find(ATOM + "entry").findtext(ATOM + "summary") == theirs.find(ATOM + "entry").findtext(
        ATOM + "summary"
    )


def test_the_real_client_fails_loudly_on_errors(sample_site):
    with pytest.raises(arxiv.HTTPError) as err:
        list(client_for(sample_site).results(arxiv.Search(id_list=["abc"])))
    assert err.value.status == 400


# -- the shape of arXiv's responses ---------------------------------------------------------------------


def _shape(el: ET.Element) -> list:
    """Element names (with namespaces), in order, each with its attribute names and children."""
    return [el.tag, sorted(el.attrib), [_shape(child) for child in el]]


def _namespaces(xml: bytes) -> dict[str, str]:
    return {prefix: uri for _, (prefix, uri) in ET.iterparse(BytesIO(xml), events=("start-ns",))}


def test_feed_matches_a_recorded_real_response_element_by_element(sample_site):
    recorded = (RECORDED / "q_testing_s0_m100_cfe7536492ca.xml").read_bytes()
    theirs = ET.fromstring(recorded)
    # The same head: id, title, updated, link, then the three opensearch counts.
    ours_bytes = query(sample_site, search_query="all:quantum", max_results=20).content
    ours = ET.fromstring(ours_bytes)
    head = lambda feed: [_shape(el) for el in feed if el.tag != ATOM + "entry"]  # noqa: E731
    assert head(ours) == head(theirs)
    assert (
        _namespaces(ours_bytes)
        == _namespaces(recorded)
        == {
            "": ATOM[1:-1],
            "arxiv": ARXIV[1:-1],
            "opensearch": OPENSEARCH[1:-1],
        }
    )
    assert ours.findtext(ATOM + "title") == (
        "arXiv Query: search_query=all:quantum&id_list=&start=0&max_results=20"
    )
    assert ours.find(ATOM + "link").get("href") == (
        f"{sample_site.url}/api/query?search_query=all:quantum&start=0&max_results=20&id_list="
    )
    # Entries with the same optional parts have the same elements in the same order; ours never has an
    # element arXiv's entries do not.
    recorded_by_parts = {_parts(e): _shape(e) for e in theirs.findall(ATOM + "entry")}
    compared = 0
    for entry in ours.findall(ATOM + "entry"):
        assert {c.tag for c in entry} <= {c.tag for e in theirs.iter(ATOM + "entry") for c in e}
        if _parts(entry) in recorded_by_parts:
            assert _shape(entry) == recorded_by_parts[_parts(entry)]
            compared += 1
    assert compared >= 3


def _parts(entry: ET.Element) -> tuple:
    """Which optional parts an entry has, and how many authors and categories (so shapes compare)."""
    return (
        len(entry.findall(ATOM + "category")),
        tuple(len(a) for a in entry.findall(ATOM + "author")),
        *(entry.find(ARXIV + name) is not None for name in ("comment", "journal_ref", "doi")),
    )


def test_entry_fields_match_a_recorded_lookup_of_the_same_kind(site):
    """The old-style id and versioned lookups arXiv answered in the recordings, answered by us."""
    theirs = ET.parse(RECORDED / "id_quant-ph_0201082v1_s0_m100_86989fe779ef.xml").getroot()
    r = query(site, id_list="hep-th/9901001v1")
    ours = ET.fromstring(r.content)
    assert r.headers["content-type"] == "application/atom+xml; charset=utf-8"
    (entry,) = ours.findall(ATOM + "entry")
    their_entry = theirs.find(ATOM + "entry")
    # Theirs has a comment; ours has none: otherwise the same elements in the same order.
    their_tags = [c.tag for c in their_entry if c.tag != ARXIV + "comment"]
    their_tags.remove(ATOM + "category")  # two categories there, one here
    assert [c.tag for c in entry] == their_tags
    assert entry.findtext(ATOM + "id") == "http://arxiv.org/abs/hep-th/9901001v1"
    assert entry.find(ATOM + "link").get("href") == "https://arxiv.org/abs/hep-th/9901001v1"
    assert ours.findtext(OPENSEARCH + "itemsPerPage") == "10"


# -- round trips ----------------------------------------------------------------------------------------


def test_real_client_reads_hostile_text_and_affiliations_exactly(site):
    (result,) = client_for(site).results(arxiv.Search(id_list=["2401.00001"]))
    paper = PAPERS[0]
    assert result.title == HOSTILE_TITLE
    assert result.summary == paper.abstract.replace("\n", "\n\n")
    assert result.comment == paper.comments and result.doi == paper.doi
    assert result.journal_ref == paper.journal_ref
    assert [(a.name, a.affiliation) for a in result.authors] == [
        ("Ada <Lovelace>", ["Engines & Co", "Second Lab"]),
        ("Émilie du Châtelet", []),
    ]
    assert result.entry_id == "http://arxiv.org/abs/2401.00001v2"
    assert result.updated == paper.updated and result.published == paper.published
    assert [link.href for link in result.links] == [
        "https://arxiv.org/abs/2401.00001v2",
        "https://arxiv.org/pdf/2401.00001v2",
        "https://doi.org/10.1000/x<y>&z",
    ]
    raw = query(site, id_list="2401.00001").content
    assert b"<script>" not in raw and b"&lt;script&gt;alert(1)&lt;/script&gt; &amp; $x&lt;y$" in raw


def _same(got: Paper, want: Paper) -> None:
    for name in (
        "id",
        "version",
        "title",
        "abstract",
        "authors",
        "categories",
        "published",
        "comments",
        "journal_ref",
        "doi",
    ):
        assert getattr(got, name) == getattr(want, name), name
    assert got.updated == (want.updated or want.published)


def test_our_ingest_reads_our_feed_back_into_the_same_papers(site):
    ids = ",".join(p.id for p in PAPERS)
    page = parse_feed(query(site, id_list=ids, max_results=100).content)
    assert page.total == len(PAPERS) and page.start == 0
    assert [p.id for p in page.items] == [p.id for p in PAPERS]
    for got, want in zip(page.items, PAPERS, strict=True):
        _same(got, want)


def test_our_ingest_source_harvests_from_our_api(site):
    """ArxivAPISource, paging with arXiv's parameters against this server instead of arXiv's."""
    settings = dataclasses.replace(
        get_settings(), arxiv_api_url=site.url + "/api/query", http_interval=0.0, http_retries=0
    )
    source = ArxivAPISource(query="cat:cs.DS", page_size=5, settings=settings)
    got = list(source.items())
    assert source.total == 12
    want = sorted((p for p in PAPERS if p.categories == ["cs.DS"]), key=lambda p: p.published, reverse=True)
    assert [p.id for p in got] == [p.id for p in want]  # ArxivAPISource asks for submittedDate order
    for g, w in zip(got, want, strict=True):
        _same(g, w)
    by_ids = list(ArxivAPISource(ids=["2401.00001v2", "hep-th/9901001"], settings=settings).items())
    for g, w in zip(by_ids, PAPERS[:2], strict=True):
        _same(g, w)


def test_sorts_on_a_catalogue_where_the_dates_disagree(site):
    c = client_for(site)
    by_updated = list(c.results(arxiv.Search(query="cat:cs.DS", sort_by=arxiv.SortCriterion.LastUpdatedDate)))
    by_submitted = list(c.results(arxiv.Search(query="cat:cs.DS", sort_by=arxiv.SortCriterion.SubmittedDate)))
    assert [short_id(r) for r in by_submitted] == [f"2402.{i:05d}" for i in range(12, 0, -1)]
    assert [short_id(r) for r in by_updated] == [f"2402.{i:05d}" for i in range(1, 13)]
    ascending = list(
        c.results(
            arxiv.Search(
                query="cat:cs.DS",
                sort_by=arxiv.SortCriterion.LastUpdatedDate,
                sort_order=arxiv.SortOrder.Ascending,
            )
        )
    )
    assert [r.entry_id for r in ascending] == [r.entry_id for r in reversed(by_updated)]
    # The same orders for an id list without a query.
    ids = [f"2402.{i:05d}" for i in (3, 1, 2)]
    listed = list(c.results(arxiv.Search(id_list=ids)))
    assert [short_id(r) for r in listed] == ids
    listed = list(c.results(arxiv.Search(id_list=ids, sort_by=arxiv.SortCriterion.LastUpdatedDate)))
    assert [short_id(r) for r in listed] == ["2402.00001", "2402.00002", "2402.00003"]
    listed = list(
        c.results(
            arxiv.Search(
                id_list=ids, sort_by=arxiv.SortCriterion.SubmittedDate, sort_order=arxiv.SortOrder.Ascending
            )
        )
    )
    assert [short_id(r) for r in listed] == ["2402.00001", "2402.00002", "2402.00003"]


def test_arxiv_query_syntax(site):
    c = client_for(site)
    found = lambda q: sorted(short_id(r) for r in c.results(arxiv.Search(query=q)))  # noqa: E731
    assert found("au:maldacena") == ["hep-th/9901001"]
    assert found('ti:"Sorting study" AND submittedDate:[202402010000 TO 202402032359]') == [
        "2402.00001",
        "2402.00002",
        "2402.00003",
    ]
    assert found("cat:cs.DS ANDNOT ti:1") == [f"2402.{i:05d}" for i in range(2, 13)]
    assert found("cat:cs.CL OR cat:hep-th") == ["2401.00001", "hep-th/9901001"]
    # The version asked for must exist: we know version 2 of 2401.00001, not version 3.
    assert [short_id(r) for r in c.results(arxiv.Search(id_list=["2401.00001v3"]))] == []


def _total(r: httpx.Response) -> str:
    return ET.fromstring(r.content).findtext(OPENSEARCH + "totalResults")
