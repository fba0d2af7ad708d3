"""The web pages, served by the real `paperwire serve` process."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from paperwire.models import Author, Paper
from paperwire.store import Store
from tests.live_server import LiveServer, start_server

HOSTILE_TITLE = "<script>alert(1)</script> & $x<y$"
PAPERS = [
    Paper(
        id="2401.00001",
        title=HOSTILE_TITLE,
        abstract="First paragraph with <b>markup</b> & ampersands.\nSecond paragraph about $\\alpha$-decay.",
        authors=[Author("Ada <Lovelace>", "Engines & Co")],
        categories=["cs.CL"],
        published=datetime(2024, 1, 2, tzinfo=UTC),
        doi="10.1/x",
        license="javascript:alert(1)",
    ),
    Paper(
        id="hep-th/9901001",
        title="An old-style paper on $\\mathcal{N}=4$ gauge theory",
        abstract="Strings and branes.",
        categories=["hep-th"],
        published=datetime(1999, 1, 4, tzinfo=UTC),
    ),
] + [
    Paper(
        id=f"2402.{i:05d}",
        title=f"Graph neural network study number {i}",
        abstract="We train graph neural networks on molecules.",
        authors=[Author("Grace Hopper")],
        categories=["cs.LG" if i % 2 else "stat.ML"],
        published=datetime(2024, 2, 1 + i % 28, tzinfo=UTC),
    )
    for i in range(1, 46)
]


@pytest.fixture
def site(env) -> Iterator[LiveServer]:
    store = Store.open(env["PAPERWIRE_DATABASE_URL"])
    store.apply(PAPERS)
    store.close()
    server = start_server({**env, "PAPERWIRE_INDEX_FOLLOW_SECONDS": "0.2"})
    yield server
    server.stop()


def get(site: LiveServer, path: str, **params) -> httpx.Response:
    return httpx.get(site.url + path, params=params, timeout=30)


def test_home_lists_papers_newest_first_and_escapes(site):
    html = get(site, "/").text
    assert "47 papers in the catalogue" in html
    assert 'rel="next" href="?page=2"' in html  # 47 papers, 30 per page
    assert (
        html.index("/papers/2402.00027") < html.index("/papers/2402.00026") < html.index("/papers/2402.00025")
    )
    older = get(site, "/", page=2).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; x&lt;y" in older  # LaTeX shown readably, escaped
    assert "<script>alert(1)" not in older
    assert "Ada &lt;Lovelace&gt;" in older
    assert older.index("/papers/2401.00001") < older.index("/papers/hep-th/9901001")


def test_paper_page(site):
    r = get(site, "/papers/2401.00001v1")
    assert r.status_code == 200
    assert "First paragraph with &lt;b&gt;markup&lt;/b&gt; &amp; ampersands." in r.text
    assert "α-decay" in r.text
    assert "Engines &amp; Co" in r.text
    assert "https://arxiv.org/pdf/2401.00001v1" in r.text
    assert "https://doi.org/10.1/x" in r.text
    assert 'href="javascript:' not in r.text  # a license that is not a web address is not a link
    old = get(site, "/papers/hep-th/9901001")
    assert old.status_code == 200 and "𝒩=4 gauge theory" in old.text


def test_paper_page_lists_similar_papers(site):
    html = get(site, "/papers/2402.00001").text
    similar = html[html.index('id="similar-h"') :]
    assert "/papers/2402.000" in similar and "/papers/2402.00001" not in similar


def test_unknown_and_invalid_ids_are_404(site):
    r = get(site, "/papers/2401.99999")
    assert r.status_code == 404 and "not in this catalogue" in r.text
    r = get(site, "/papers/<img src=x>")
    assert r.status_code == 404 and "<img src=x>" not in r.text


def test_search_page_highlights_and_escapes(site):
    r = get(site, "/search", q="grahp neural <b>")
    assert r.status_code == 200
    assert "<mark>Graph</mark> <mark>neural</mark>" in r.text  # typo-tolerant, highlighted
    assert "<b>" not in r.text.split('id="content"')[1]  # the query is echoed escaped
    assert "&lt;b&gt;" in r.text
    assert re.search(r"<strong>45</strong> results", r.text)


def test_search_page_filters_sort_and_pagination(site):
    r = get(site, "/search", q="graph", category="cs.LG", sort="date")
    assert r.status_code == 200
    assert re.search(r"<strong>23</strong> results", r.text)
    assert "stat.ML" not in r.text.split('class="cards results"')[1]
    assert 'rel="next" href="?q=graph&amp;sort=date&amp;category=cs.LG&amp;page=2"' in r.text
    page2 = get(site, "/search", q="graph", category="cs.LG", sort="date", page=2)
    assert "Page 2 of 2" in page2.text
    ids = re.findall(r'<h3 class="title"><a href="/papers/([^"]+)"', page2.text)
    assert len(ids) == 3
    r = get(site, "/search", author="Hopper", **{"from": "2024-02-10", "to": "2024-02-12"})
    assert re.search(r"<strong>\d+</strong> papers", r.text)
    found = re.findall(r'<time datetime="([^"]+)"', r.text)
    assert found and all("2024-02-10" <= d <= "2024-02-12" for d in found)


def test_search_page_by_identifier(site):
    r = get(site, "/search", q="arXiv:2401.00001v2 2512.00001")
    assert r.status_code == 200
    results = r.text.split('id="search-results"')[1]
    assert re.findall(r'<h3 class="title"><a href="/papers/([^"]+)"', results) == ["2401.00001"]
    assert "arXiv:2512.00001 is not in this catalogue" in results
    assert (
        '<a href="https://arxiv.org/abs/2512.00001" rel="noopener noreferrer">look it up on arXiv</a>'
        in results
    )
    r = get(site, "/search", q="doi:10.9999/<x>")
    assert "No papers found" in r.text and "as naming papers" in r.text
    assert "doi:10.9999/&lt;x&gt; is not in this catalogue" in r.text
    assert 'href="https://doi.org/10.9999/%3Cx%3E"' in r.text


def test_an_arxiv_link_on_this_host_opens_the_paper(site):
    r = httpx.get(site.url + "/abs/2401.00001v2", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/papers/2401.00001"
    assert httpx.get(site.url + "/abs/hep-th/9901001", follow_redirects=False).headers["location"] == (
        "/papers/hep-th/9901001"
    )
    r = httpx.get(site.url + "/abs/not-an-id<x>")
    assert r.status_code == 404 and "<x>" not in r.text


def test_search_page_no_results_and_bad_input(site):
    r = get(site, "/search", q="graph", category="astro-ph")
    assert r.status_code == 200 and "No papers found" in r.text and "without the filters" in r.text
    r = get(site, "/search", q="graph", **{"from": "yesterday"})
    assert r.status_code == 400 and "must be a date" in r.text
    r = get(site, "/search", q="x" * 501)
    assert r.status_code == 400 and "500" in r.text
    r = get(site, "/search", q="graph", **{"from": "2024-03-01", "to": "2024-01-01"})
    assert r.status_code == 400 and "after the end date" in r.text


def test_period_lists_with_navigation(site):
    r = get(site, "/papers/month/2024-02")
    assert r.status_code == 200
    assert "February 2024" in r.text and "45 papers" in r.text
    assert 'href="/papers/month/2024-01"' in r.text and 'href="/papers/month/2024-03"' in r.text
    day = get(site, "/papers/date/2024-01-02")
    assert "/papers/2401.00001" in day.text and 'href="/papers/date/2024-01-01"' in day.text
    week = get(site, "/papers/week/2024-W05")
    assert week.status_code == 200 and "Week 5, 2024" in week.text
    empty = get(site, "/papers/date/2024-01-05")
    assert "No papers on this day" in empty.text
    latest = httpx.get(site.url + "/papers/week", follow_redirects=False)
    assert latest.status_code == 302 and latest.headers["location"] == "/papers/week/2024-W09"
    for bad in ("/papers/date/2024-02-30", "/papers/week/2024-W54", "/papers/month/2024-13"):
        r = get(site, bad)
        assert r.status_code == 400 and "invalid" in r.text


def test_api_paths_answer_json_errors(site):
    r = get(site, "/api/nothing/here")
    assert r.status_code == 404 and r.json() == {"error": "nothing at /api/nothing/here"}


def test_server_follows_the_store_without_restart(site):
    store = Store.open(site.env["PAPERWIRE_DATABASE_URL"])
    store.apply(
        [Paper(id="2403.00001", title="Quasicrystal tilings", published=datetime(2024, 3, 1, tzinfo=UTC))]
    )
    store.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if "/papers/2403.00001" in get(site, "/search", q="quasicrystal").text:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the server's index never caught up with the store")


def test_search_rate_limit(env):
    store = Store.open(env["PAPERWIRE_DATABASE_URL"])
    store.apply(PAPERS[:2])
    store.close()
    server = start_server({**env, "PAPERWIRE_SEARCH_RATE_LIMIT": "3"})
    try:
        codes = [get(server, "/search", q="paper").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = get(server, "/search", q="paper")
        assert int(r.headers["retry-after"]) >= 1 and "too many searches" in r.text
        assert (
            get(server, "/papers/2401.00001").status_code == 200
        )  # pages that do not search are not limited
    finally:
        server.stop()


def test_opensearch_and_feed_links(site):
    r = get(site, "/opensearch.xml")
    assert r.status_code == 200 and f"{site.url}/search?q={{searchTerms}}" in r.text
    html = get(site, "/search", q="graph").text
    assert 'rel="alternate" type="application/rss+xml"' in html and "/search.rss?q=graph" in html


def test_script_and_stylesheet_links_change_with_their_content(site):
    """A browser never keeps an old app.js or style.css: their links carry a digest of both files."""
    import hashlib
    from pathlib import Path

    static = Path(__file__).resolve().parent.parent / "paperwire" / "web" / "static"
    digest = hashlib.sha256((static / "style.css").read_bytes() + (static / "app.js").read_bytes())
    html = get(site, "/").text
    for name in ("style.css", "app.js"):
        assert f"/static/{name}?v={digest.hexdigest()[:12]}" in html
        assert get(site, f"/static/{name}").status_code == 200


def test_far_dates_are_client_errors_or_empty_never_server_errors(site):
    for path, params in [
        ("/search", {"q": "graph", "from": "1000-01-01"}),
        ("/search", {"q": "graph", "to": "9999-12-31"}),
        ("/papers/date/9999-12-31", {}),
        ("/papers/month/1500-01", {}),
        ("/papers/date/0001-01-01", {}),
        ("/papers/week/9999-W52", {}),
    ]:
        r = get(site, path, **params)
        assert r.status_code in (200, 400), (path, params, r.status_code)


def test_head_requests_answer_like_get_without_a_body(site):
    for path in ("/", "/papers/2401.00001", "/api/papers/2401.00001", "/papers/2401.00001.md"):
        r = httpx.head(site.url + path, timeout=30)
        assert r.status_code == 200 and r.content == b"", path
        assert r.headers["content-type"] == httpx.get(site.url + path).headers["content-type"]
    assert httpx.head(site.url + "/papers/2401.99999").status_code == 404


def test_a_web_process_works_on_as_many_requests_at_once_as_configured(env, monkeypatch):
    """Handlers run on anyio's thread pool; PAPERWIRE_WEB_THREADS (default 4) caps it instead of anyio's
    40, which on a few cores only made requests queue for the GIL and open database connections. The
    app's own lifespan sets the cap, in the event loop that serves it (the limiter is per loop)."""
    import anyio
    import anyio.to_thread

    from paperwire.config import SettingsError, get_settings
    from paperwire.web.app import create_app

    monkeypatch.setenv("PAPERWIRE_WEB_THREADS", "3")
    store = Store.open(env["PAPERWIRE_DATABASE_URL"])
    app = create_app(store)

    async def serving() -> tuple[int, int]:
        before = anyio.to_thread.current_default_thread_limiter().total_tokens
        async with app.router.lifespan_context(app):
            return before, anyio.to_thread.current_default_thread_limiter().total_tokens

    assert anyio.run(serving) == (40, 3)
    store.close()
    monkeypatch.setenv("PAPERWIRE_WEB_THREADS", "0")
    with pytest.raises(SettingsError, match="PAPERWIRE_WEB_THREADS"):
        get_settings()
