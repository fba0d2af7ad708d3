"""RSS 2.0 and Atom feeds, read by feedparser from a live ``paperwire serve``."""

from __future__ import annotations

import gzip
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import SimpleNamespace

import feedparser
import httpx
import pytest
from starlette.requests import Request

from paperwire.latex import readable
from paperwire.models import Author, Paper
from paperwire.store import Store
from paperwire.web.feeds import feed_links
from tests.live_server import LiveServer, start_server
from tests.sample_daily import LATEST_DAY, LATEST_IDS

SAMPLE = Path(__file__).resolve().parent.parent / "paperwire" / "sample" / "papers.jsonl.gz"
HOSTILE_TITLE = "<script>alert(1)</script> & $x<y$"
BASE_URL = "https://papers.example.org/sub"
PAPERS = [
    Paper(
        id="2401.00001",
        version=2,
        title=HOSTILE_TITLE,
        abstract="An abstract with <b>markup</b> & <script>alert(2)</script>.\nA second paragraph, $\\alpha$.",
        authors=[Author("Ada <Lovelace>", "Engines & Co")],
        categories=["cs.CL"],
        published=datetime(2024, 1, 2, 10, 30, tzinfo=UTC),
        updated=datetime(2024, 1, 9, 8, 0, tzinfo=UTC),
        comments="3 pages & <2 figures",
    ),
    Paper(
        id="hep-th/9901001",
        title="An old-style paper on $\\mathcal{N}=4$ gauge theory",
        abstract="Strings and branes.",
        authors=[Author("Juan Maldacena")],
        categories=["hep-th"],
        published=datetime(1999, 1, 4, tzinfo=UTC),
    ),
]


def _sample() -> list[dict]:
    with gzip.open(SAMPLE, "rt") as f:
        return [json.loads(line) for line in f]


def sample_ids(prefix: str) -> set[str]:
    """Ids of the sample papers published on days starting with ``prefix`` (2007-04, 2007-04-02)."""
    return {p["id"] for p in _sample() if (p.get("published") or "").startswith(prefix)}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[LiveServer]:
    """Hostile text, and PAPERWIRE_BASE_URL set: links must use it, not the address asked."""
    data = tmp_path_factory.mktemp("feeds-site")
    env = {
        "PAPERWIRE_DATA_DIR": str(data),
        "PAPERWIRE_DATABASE_URL": f"sqlite:///{data / 'paperwire.db'}",
        "PAPERWIRE_IMPORT_EMBED_LIMIT": "0",
        "PAPERWIRE_SEARCH_RATE_LIMIT": "0",
        "PAPERWIRE_BASE_URL": BASE_URL + "/",
    }
    store = Store.open(env["PAPERWIRE_DATABASE_URL"])
    store.apply(PAPERS)
    store.close()
    server = start_server(env)
    yield server
    server.stop()


def fetch(server: LiveServer, path: str, **params) -> httpx.Response:
    return httpx.get(server.url + path, params=params, timeout=60)


def parsed(server: LiveServer, path: str, **params) -> feedparser.FeedParserDict:
    r = fetch(server, path, **params)
    assert r.status_code == 200, (path, r.text[:300])
    kind = "rss" if path.endswith(".rss") else "atom"
    assert r.headers["content-type"] == f"application/{kind}+xml; charset=utf-8"
    feed = feedparser.parse(r.content)
    assert feed.bozo == 0, (path, feed.get("bozo_exception"))
    assert feed.version == ("rss20" if kind == "rss" else "atom10")
    return feed


def entry_ids(feed: feedparser.FeedParserDict) -> list[str]:
    return [e.link.rsplit("/papers/", 1)[1] for e in feed.entries]


FEEDS = [
    "/feed",
    "/papers/date",
    "/papers/week",
    "/papers/month",
    "/papers/date/2007-04-02",
    "/papers/week/2007-W14",
    "/papers/month/2007-04",
    "/search",
]


@pytest.mark.parametrize("fmt", ["rss", "atom"])
@pytest.mark.parametrize("path", FEEDS)
def test_every_feed_parses_cleanly_with_absolute_stable_links(sample_site, path, fmt):
    params = {"q": "quantum"} if path == "/search" else {}
    feed = parsed(sample_site, f"{path}.{fmt}", **params)
    assert feed.entries, path
    assert feed.feed.title.startswith("paperwire: ")
    assert feed.feed.link.startswith(sample_site.url + "/")
    self_links = [link.href for link in feed.feed.links if link.rel == "self"]
    assert self_links and self_links[0].startswith(f"{sample_site.url}{path}.{fmt}")
    for entry in feed.entries:
        assert entry.link.startswith(sample_site.url + "/papers/")
        assert entry.id == entry.link  # the guid / id: the paper's page, no version
        assert entry.published_parsed is not None
        assert entry.title
        assert entry.summary


def test_month_week_and_day_feeds_hold_the_periods_papers(sample_site):
    april = parsed(sample_site, "/papers/month/2007-04.rss")
    assert set(entry_ids(april)) == sample_ids("2007-04") and len(april.entries) == 157
    day = parsed(sample_site, "/papers/date/2007-04-02.atom")
    assert set(entry_ids(day)) == sample_ids("2007-04-02")
    week = parsed(sample_site, "/papers/week/2007-W14.atom")  # Monday 2 to Sunday 8 April
    assert set(entry_ids(week)) == {i for d in range(2, 9) for i in sample_ids(f"2007-04-0{d}")}
    # Newest first, as on the list page, with RFC 822 dates in RSS.
    dates = [parsedate_to_datetime(e.published) for e in april.entries]
    assert dates == sorted(dates, reverse=True)
    assert all(e.published.endswith(" GMT") for e in april.entries)
    assert len(parsed(sample_site, "/papers/month/2007-04.rss", limit=5).entries) == 5


def test_feed_entries_carry_the_papers_metadata(sample_site):
    feed = parsed(sample_site, "/papers/date/2007-04-02.atom")
    entry = next(e for e in feed.entries if e.link.endswith("/papers/0704.0001"))
    assert (
        entry.title == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert [a.name for a in entry.authors][:2] == ["C. Balázs", "E. L. Berger"]
    assert [t.term for t in entry.tags] == ["hep-ph"]
    assert entry.published == "2007-04-02T19:18:42Z"
    links = {link.get("title"): link.href for link in entry.links}
    assert links["pdf"] == "https://arxiv.org/pdf/0704.0001"
    assert links["arXiv"] == "https://arxiv.org/abs/0704.0001"
    assert "diphoton" in entry.content[0].value
    rss = parsed(sample_site, "/papers/date/2007-04-02.rss")
    item = next(e for e in rss.entries if e.link.endswith("/papers/0704.0001"))
    assert item.id == item.link
    assert parsedate_to_datetime(item.published) == datetime(2007, 4, 2, 19, 18, 42, tzinfo=UTC)
    assert "C. Balázs" in item.summary and "Phys.Rev.D76:013009,2007" in item.summary


def test_latest_period_feeds_follow_the_latest_daily_list(sample_site):
    feed = parsed(sample_site, "/papers/date.atom")
    assert set(entry_ids(feed)) == LATEST_IDS
    assert feed.feed.id == sample_site.url + "/papers/date.atom"  # stable while the day moves on
    assert feed.feed.link == f"{sample_site.url}/papers/date/{LATEST_DAY.isoformat()}"


def test_search_feeds_take_the_search_pages_parameters(sample_site):
    feed = parsed(sample_site, "/search.rss", q="quantum", category="hep-th", mode="keyword")
    assert feed.entries and all(any(t.term == "hep-th" for t in e.tags) for e in feed.entries)
    assert feed.feed.link == f"{sample_site.url}/search?q=quantum&mode=keyword&category=hep-th"
    dated = parsed(
        sample_site, "/search.atom", q="", sort="date", **{"from": "2007-04-01", "to": "2007-04-01"}
    )
    assert set(entry_ids(dated)) == sample_ids("2007-04-01")
    by_date = [e.published for e in dated.entries]
    assert by_date == sorted(by_date, reverse=True)
    authored = parsed(sample_site, "/search.atom", author="E. L. Berger")
    assert "0704.0001" in entry_ids(authored)
    assert all(any(a.name == "E. L. Berger" for a in e.authors) for e in authored.entries)
    empty = parsed(sample_site, "/search.rss", q="zzzqqqxxx", mode="keyword")
    assert empty.entries == []


@pytest.mark.parametrize(
    "path",
    [
        "/papers/date/2007-02-30.rss",
        "/papers/week/2007-04.atom",
        "/papers/month/2007-13.rss",
        "/papers/date/yesterday.atom",
        "/search.rss?q=x&from=yesterday",
        "/search.atom?q=x&from=2007-05-01&to=2007-04-01",
        "/search.rss?q=x&sort=sideways",
        "/search.rss?q=x&mode=psychic",
        "/feed.rss?limit=0",
    ],
)
def test_malformed_parameters_are_400(sample_site, path):
    r = httpx.get(sample_site.url + path, timeout=30)
    assert r.status_code == 400, r.text[:200]


def test_unknown_period_kinds_are_404(sample_site):
    for path in ("/papers/year/2007.rss", "/papers/hep-th/9901001.atom", "/papers/fortnight.rss"):
        assert httpx.get(sample_site.url + path, timeout=30).status_code == 404, path


def test_hostile_text_comes_through_as_text(site):
    for fmt in ("rss", "atom"):
        r = fetch(site, f"/feed.{fmt}")
        assert b"<script>" not in r.content  # every < of the paper's text is escaped
        feed = parsed(site, f"/feed.{fmt}")
        entry = next(e for e in feed.entries if e.link.endswith("/papers/2401.00001"))
        assert entry.title == readable(HOSTILE_TITLE) == "<script>alert(1)</script> & x<y"
        assert entry.title_detail.type == "text/plain"
        body = entry.content[0].value if fmt == "atom" else entry.summary
        # The body is HTML whose text is the abstract: markup in the abstract stays text.
        assert "&lt;b&gt;markup&lt;/b&gt; &amp; &lt;script&gt;alert(2)&lt;/script&gt;" in body
        assert "Ada &lt;Lovelace&gt;" in body and "3 pages &amp; &lt;2 figures" in body
        assert "α" in body  # LaTeX made readable
        old = next(e for e in feed.entries if "hep-th/9901001" in e.link)
        assert old.title == "An old-style paper on 𝒩=4 gauge theory"


def test_links_use_the_configured_base_url(site):
    for fmt in ("rss", "atom"):
        feed = parsed(site, f"/feed.{fmt}")
        assert feed.feed.link == BASE_URL + "/"
        assert [link.href for link in feed.feed.links if link.rel == "self"] == [f"{BASE_URL}/feed.{fmt}"]
        assert {e.link for e in feed.entries} == {
            f"{BASE_URL}/papers/2401.00001",
            f"{BASE_URL}/papers/hep-th/9901001",
        }
    raw = ET.fromstring(fetch(site, "/feed.rss").content)
    guids = [g.text for g in raw.iter("guid")]
    assert guids == [f"{BASE_URL}/papers/2401.00001", f"{BASE_URL}/papers/hep-th/9901001"]
    assert all(g.get("isPermaLink") == "true" for g in raw.iter("guid"))


def test_etag_lets_readers_poll_cheaply(site):
    first = fetch(site, "/feed.atom")
    etag = first.headers["etag"]
    again = httpx.get(site.url + "/feed.atom", headers={"If-None-Match": etag}, timeout=30)
    assert again.status_code == 304 and again.content == b""
    other = httpx.get(site.url + "/feed.rss", headers={"If-None-Match": etag}, timeout=30)
    assert other.status_code == 200


def _request(path: str, query: str = "", base_url: str = "") -> Request:
    app = SimpleNamespace(state=SimpleNamespace(settings=SimpleNamespace(base_url=base_url)))
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "server": ("example.org", 80),
            "path": path,
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(b"host", b"example.org")],
            "app": app,
        }
    )


def test_feed_links_for_page_heads():
    site_feeds = [
        ("paperwire: latest papers (RSS)", "application/rss+xml", "http://example.org/feed.rss"),
        ("paperwire: latest papers (Atom)", "application/atom+xml", "http://example.org/feed.atom"),
    ]
    assert feed_links(_request("/")) == site_feeds
    assert feed_links(_request("/papers/0704.0001")) == site_feeds
    month = feed_links(_request("/papers/month/2007-04", "page=2"))
    assert month[:2] == [
        ("April 2007 (RSS)", "application/rss+xml", "http://example.org/papers/month/2007-04.rss"),
        ("April 2007 (Atom)", "application/atom+xml", "http://example.org/papers/month/2007-04.atom"),
    ]
    assert feed_links(_request("/papers/month/2007-13")) == site_feeds
    search = feed_links(_request("/search", "q=graph+%26+co&category=cs.LG&sort=date&page=3"))
    assert search[0] == (
        "Search “graph & co” (RSS)",
        "application/rss+xml",
        "http://example.org/search.rss?q=graph+%26+co&sort=date&category=cs.LG",
    )
    assert search[1][2] == "http://example.org/search.atom?q=graph+%26+co&sort=date&category=cs.LG"
    configured = feed_links(_request("/", base_url="https://papers.example.org"))
    assert configured[0][2] == "https://papers.example.org/feed.rss"


def test_feed_links_point_at_working_feeds(sample_site):
    """What the helper offers for a search page is a feed of that search."""
    request = _request("/search", "q=diphoton&mode=keyword", base_url=sample_site.url)
    title, kind, href = feed_links(request)[0]
    assert kind == "application/rss+xml"
    feed = feedparser.parse(httpx.get(href, timeout=30).content)
    assert feed.bozo == 0 and "0704.0001" in entry_ids(feed)
