"""paperwire's own JSON API (/api/v1), against a live ``paperwire serve``."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from paperwire.models import Author, Paper
from paperwire.store import Store
from tests.live_server import LiveServer, start_server
from tests.sample_daily import LATEST_DAY, LATEST_IDS

SAMPLE = Path(__file__).resolve().parent.parent / "paperwire" / "sample" / "papers.jsonl.gz"
HIT_KEYS = {
    "id",
    "score",
    "title",
    "abstract",
    "title_html",
    "snippet_html",
    "matched",
    "authors",
    "categories",
    "primary_category",
    "published",
    "updated",
    "url",
    "abs_url",
    "pdf_url",
}


def _sample_days() -> dict[str, date]:
    with gzip.open(SAMPLE, "rt") as f:
        return {
            r["id"]: datetime.fromisoformat(r["published"]).astimezone(UTC).date() for r in map(json.loads, f)
        }


DAYS = _sample_days()


def _count(start: date, end: date) -> int:
    return sum(1 for d in DAYS.values() if start <= d <= end)


def _day(iso: str) -> date:
    assert iso.endswith("Z")
    return datetime.fromisoformat(iso).date()


@pytest.fixture(scope="module")
def site(sample_site: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sample_site.url, timeout=60) as client:
        yield client


def _error(r: httpx.Response, status: int = 400) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and body["error"]
    return body["error"]


# -- search ---------------------------------------------------------------------------------------------


def test_search_shape_and_top_hit(site):
    body = site.get("/api/v1/search", params={"q": "diphoton production", "per_page": 5}).json()
    assert {
        "query",
        "total",
        "page",
        "per_page",
        "pages",
        "mode",
        "sort",
        "fallback",
        "relaxed",
        "meaning_only",
        "corrected",
        "lookup",
        "not_found",
        "took_ms",
        "hits",
    } == set(body)
    assert body["query"] == "diphoton production" and body["page"] == 1 and body["per_page"] == 5
    assert body["corrected"] is None and body["meaning_only"] is False
    typed = site.get("/api/v1/search", params={"q": "diphotn prodction", "per_page": 5}).json()
    assert typed["corrected"] == "diphoton production" and typed["hits"][0]["id"] == "0704.0001"
    assert body["mode"] == "hybrid" and body["sort"] == "relevance"
    assert body["total"] >= 1 and body["pages"] >= 1 and len(body["hits"]) == 5
    top = body["hits"][0]
    assert set(top) == HIT_KEYS
    assert top["id"] == "0704.0001"
    assert "<mark>diphoton</mark>" in top["title_html"]
    assert "<mark>" in top["snippet_html"]
    assert any("title" in m for m in top["matched"])
    assert top["authors"][0] == {"name": "C. Balázs", "affiliation": None}
    assert top["categories"] == ["hep-ph"] and top["primary_category"] == "hep-ph"
    assert top["published"] == "2007-04-02T19:18:42Z"
    assert top["url"].endswith("/papers/0704.0001")
    assert top["abs_url"] == "https://arxiv.org/abs/0704.0001"
    assert top["pdf_url"] == "https://arxiv.org/pdf/0704.0001"
    assert isinstance(top["score"], float)


def test_a_described_idea_is_said_to_be_ranked_by_meaning(site):
    """A judged description of an idea (no sample paper holds more than half its words): the API and the
    page say that closeness in meaning ranked the results, not that papers matching most words come
    first; a query whose words match says neither."""
    q = "irregular grains deflecting illumination, represented as arrays of tiny polarizable voxels"
    body = site.get("/api/v1/search", params={"q": q}).json()
    assert body["meaning_only"] is True and body["mode"] == "hybrid" and body["hits"]
    page = site.get("/search", params={"q": q}).text
    assert "these are the papers closest in meaning" in page and "match most of them" not in page
    words = site.get("/search", params={"q": "diphoton production"}).text
    assert "closest in meaning" not in words


def test_search_page_links_the_corrected_query_with_its_filters(site):
    r = site.get("/search", params={"q": "diphotn prodction", "category": "hep-ph", "from": "2007-01-01"})
    assert r.status_code == 200
    link = re.search(r"Including results for “<a href=\"([^\"]+)\">diphoton production</a>”", r.text)
    assert link and link[1] == "/search?q=diphoton+production&amp;category=hep-ph&amp;from=2007-01-01"


def test_search_by_identifier(site):
    body = site.get(
        "/api/v1/search", params={"q": "https://arxiv.org/abs/0704.0002v1 2512.00001, 0704.0001"}
    ).json()
    assert body["lookup"] is True
    assert [h["id"] for h in body["hits"]] == ["0704.0002", "0704.0001"]
    assert body["hits"][0]["matched"] == ["arXiv id"]
    assert body["not_found"] == ["arXiv:2512.00001"] and body["total"] == 2
    words = site.get("/api/v1/search", params={"q": "diphoton production"}).json()
    assert words["lookup"] is False and words["not_found"] == []


def test_search_keyword_mode_date_sort_and_paging(site):
    params = {"q": "quantum", "mode": "keyword", "sort": "date", "per_page": 10}
    first = site.get("/api/v1/search", params=params).json()
    second = site.get("/api/v1/search", params={**params, "page": 2}).json()
    assert first["mode"] == "keyword" and first["sort"] == "date"
    assert first["total"] > 10 and first["pages"] == -(-first["total"] // 10)
    assert len(first["hits"]) == 10 and second["page"] == 2
    assert not {h["id"] for h in first["hits"]} & {h["id"] for h in second["hits"]}
    published = [h["published"] for h in first["hits"] + second["hits"]]
    assert published == sorted(published, reverse=True)
    assert all("quantum" in (h["title"] + h["abstract"]).lower() for h in first["hits"])


def test_search_filters(site):
    body = site.get(
        "/api/v1/search",
        params={"category": "hep-ph", "from": "2007-04-02", "to": "2007-04-02", "per_page": 100},
    ).json()
    assert body["total"] == len(body["hits"]) > 0
    assert all("hep-ph" in h["categories"] for h in body["hits"])
    assert all(_day(h["published"]) == date(2007, 4, 2) for h in body["hits"])
    assert "0704.0001" in {h["id"] for h in body["hits"]}
    # Repeated and comma-separated categories mean "any of".
    both = site.get(
        "/api/v1/search", params=[("category", "hep-ph,astro-ph"), ("category", "math.*"), ("per_page", 100)]
    ).json()
    assert both["total"] > body["total"]
    assert all(
        any(c == "hep-ph" or c.startswith(("astro-ph", "math")) for c in h["categories"])
        for h in both["hits"]
    )
    # Authors: every one must match (accents folded).
    by_author = site.get("/api/v1/search", params=[("author", "Balazs"), ("author", "Berger")]).json()
    assert [h["id"] for h in by_author["hits"]] == ["0704.0001"]
    # from/to far outside the index's date range still work (clamped, not an error).
    wide = site.get("/api/v1/search", params={"from": "1000-01-01", "to": "9999-12-31", "per_page": 1})
    assert wide.status_code == 200 and wide.json()["total"] == len(DAYS)


def test_search_semantic_mode(site):
    body = site.get("/api/v1/search", params={"q": "photon pairs at hadron colliders", "mode": "semantic"})
    assert body.status_code == 200
    hits = body.json()["hits"]
    assert body.json()["mode"] == "semantic" and hits
    assert "0704.0001" in [h["id"] for h in hits[:5]]


def test_search_bad_input_is_400_json(site):
    cases = [
        ({"q": "x", "per_page": 101}, "100"),
        ({"q": "x", "per_page": 0}, "per_page"),
        ({"q": "x", "page": 0}, "page"),
        ({"q": "x", "page": "two"}, "page"),
        ({"q": "x", "per_page": 100, "page": 101}, "10,000"),
        ({"q": "x", "page": 10**30}, "10,000"),
        ({"q": "x", "mode": "fuzzy"}, "mode"),
        ({"q": "x", "sort": "upvotes"}, "sort"),
        ({"from": "2024-02-01", "to": "2024-01-01"}, "after"),
        ({"from": "2024-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"q": "a" * 501}, "too long"),
        ({"q": "null\x00byte"}, "control characters"),
        ({"q": "bell\x07"}, "control characters"),
        ({"category": ",".join(f"c{i}" for i in range(21))}, "at most 20"),
        ({"author": "x" * 201}, "200"),
        ({"author": "tab\x01"}, "control characters"),
    ]
    for params, fragment in cases:
        message = _error(site.get("/api/v1/search", params=params))
        assert fragment in message, (params, message)


# -- papers ---------------------------------------------------------------------------------------------


def test_paper_full_json(site):
    for spelling in ("cond-mat/0702661", "cond-mat/0702661v1", "arXiv:cond-mat/0702661"):
        r = site.get(f"/api/v1/papers/{spelling}")
        assert r.status_code == 200, spelling
    paper = r.json()
    assert paper["id"] == "cond-mat/0702661" and paper["version"] == 2
    assert paper["title"].startswith("Low temperature specific heat")
    assert [a["name"] for a in paper["authors"]] == ["Adrian Del Maestro", "Michel J. P. Gingras"]
    assert paper["categories"] == ["cond-mat.mtrl-sci", "cond-mat.stat-mech"]
    assert paper["primary_category"] == "cond-mat.mtrl-sci"
    assert paper["published"].startswith("2007-02-27T") and paper["published"].endswith("Z")
    assert paper["updated"].startswith("2007-06-25T")
    assert paper["journal_ref"] == "Phys. Rev. B 76, 064418 (2007)"
    assert paper["doi"] == "10.1103/PhysRevB.76.064418"
    assert "12 pages" in paper["comments"]
    assert paper["url"].endswith("/papers/cond-mat/0702661")
    assert paper["abs_url"] == "https://arxiv.org/abs/cond-mat/0702661"
    assert isinstance(paper["trending_score"], float)
    assert {"report_no", "license"} <= set(paper)


def test_paper_unknown_or_invalid_is_404(site):
    assert "0704.9999" in _error(site.get("/api/v1/papers/0704.9999"), 404)
    assert "not an arXiv id" in _error(site.get("/api/v1/papers/robots.txt"), 404)
    _error(site.get("/api/v1/papers/hep-th/0101999"), 404)


def test_papers_batch(site):
    r = site.get(
        "/api/v1/papers", params={"ids": "0704.0001v2, cond-mat/0702661,nonsense,0704.9999,0704.0001"}
    )
    body = r.json()
    assert [p["id"] for p in body["papers"]] == ["0704.0001", "cond-mat/0702661"]
    assert body["missing"] == ["nonsense", "0704.9999"]
    assert "101" in _error(site.get("/api/v1/papers", params={"ids": ",".join(["0704.0001"] * 101)}))
    _error(site.get("/api/v1/papers", params={"ids": " , "}))
    _error(site.get("/api/v1/papers"))


def test_similar(site):
    body = site.get("/api/v1/papers/cond-mat/0702661/similar", params={"limit": 5}).json()
    assert body["id"] == "cond-mat/0702661"
    assert 1 <= len(body["hits"]) <= 5
    assert "cond-mat/0702661" not in [h["id"] for h in body["hits"]]
    assert all(set(h) == HIT_KEYS for h in body["hits"])
    # Nearest in meaning: a condensed-matter paper about magnetism is among them.
    assert any(any(c.startswith("cond-mat") for c in h["categories"]) for h in body["hits"])
    assert site.get("/api/v1/papers/0704.0001v1/similar").json()["id"] == "0704.0001"
    _error(site.get("/api/v1/papers/0704.9999/similar"), 404)
    assert "50" in _error(site.get("/api/v1/papers/0704.0001/similar", params={"limit": 51}))


# -- lists ----------------------------------------------------------------------------------------------


def test_day_list(site):
    body = site.get("/api/v1/lists/date/2007-04-02", params={"per_page": 100}).json()
    assert body["kind"] == "date" and body["key"] == "2007-04-02"
    assert body["label"] == "Monday, April 2, 2007"
    assert body["start"] == body["end"] == "2007-04-02"
    assert body["previous"] == "2007-04-01" and body["next"] == "2007-04-03"
    assert body["total"] == _count(date(2007, 4, 2), date(2007, 4, 2)) > 100
    assert body["pages"] == 2 and len(body["papers"]) == 100
    assert all(_day(p["published"]) == date(2007, 4, 2) for p in body["papers"])
    rest = site.get("/api/v1/lists/date/2007-04-02", params={"per_page": 100, "page": 2}).json()
    assert len(rest["papers"]) == body["total"] - 100
    assert not {p["id"] for p in rest["papers"]} & {p["id"] for p in body["papers"]}


def test_week_and_month_lists(site):
    week = site.get("/api/v1/lists/week/2007-W13").json()
    assert week["start"] == "2007-03-26" and week["end"] == "2007-04-01"
    assert week["previous"] == "2007-W12" and week["next"] == "2007-W14"
    assert week["total"] == _count(date(2007, 3, 26), date(2007, 4, 1))
    assert len(week["papers"]) == 30 and week["per_page"] == 30
    month = site.get("/api/v1/lists/month/2007-04", params={"sort": "trending", "per_page": 5}).json()
    assert month["total"] == 157 and month["sort"] == "trending" and len(month["papers"]) == 5
    assert month["previous"] == "2007-03" and month["next"] == "2007-05"
    # ISO weeks cross years: 2020-W53 runs from 28 December 2020 to 3 January 2021.
    iso = site.get("/api/v1/lists/week/2020-W53").json()
    assert (iso["start"], iso["end"], iso["next"]) == ("2020-12-28", "2021-01-03", "2021-W01")


def test_latest_lists(site):
    day = site.get("/api/v1/lists/date/latest").json()
    assert day["key"] == LATEST_DAY.isoformat() and day["total"] == len(LATEST_IDS)
    assert {p["id"] for p in day["papers"]} == LATEST_IDS
    assert day["next"] is None or date.fromisoformat(day["next"]) <= datetime.now(UTC).date()
    month = site.get("/api/v1/lists/month/latest").json()
    assert month["key"] == f"{LATEST_DAY.year}-{LATEST_DAY.month:02d}"


def test_list_bad_input(site):
    for path, fragment in [
        ("/api/v1/lists/date/2007-4-2", "YYYY-MM-DD"),
        ("/api/v1/lists/date/2007-02-30", "date"),
        ("/api/v1/lists/week/2007-W60", "YYYY-Www"),
        ("/api/v1/lists/month/2007-00", "YYYY-MM"),
        ("/api/v1/lists/year/2007", "kind"),
        ("/api/v1/lists/date/9999-12-31", "9999-12-31"),
        ("/api/v1/lists/month/0001-01", "between"),
        ("/api/v1/lists/date/2007-04-02?sort=relevance", "sort"),
        ("/api/v1/lists/date/2007-04-02?per_page=500", "100"),
        ("/api/v1/lists/date/2007-04-02?per_page=100&page=101", "10,000"),
    ]:
        assert fragment in _error(site.get(path)), path


# -- the API's description ------------------------------------------------------------------------------


def test_openapi_documents_v1(site):
    spec = site.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/v1/search",
        "/api/v1/papers",
        "/api/v1/papers/{paper_id}",
        "/api/v1/papers/{paper_id}/similar",
        "/api/v1/lists/{kind}/{key}",
    ):
        op = paths[path]["get"]
        assert op["summary"] and "paperwire API v1" in op["tags"], path
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in schema, path
    search = paths["/api/v1/search"]["get"]
    params = {p["name"] for p in search["parameters"]}
    assert {"q", "mode", "sort", "page", "per_page", "category", "author", "from", "to"} <= params
    assert "400" in search["responses"]
    hit = spec["components"]["schemas"]["HitOut"]["properties"]
    assert {"title_html", "snippet_html", "matched", "pdf_url"} <= set(hit)
    for path in ("/api/papers/search", "/api/daily_papers", "/api/papers/{paper_id}"):
        assert "Hugging Face-compatible" in paths[path]["get"]["tags"]
    for path, operations in paths.items():  # each says what it does (not FastAPI's "Api Me" from a name)
        for method, op in operations.items():
            assert op["summary"] != op["summary"].title(), (method, path, op["summary"])
    docs = site.get("/docs")
    assert docs.status_code == 200 and "https://" not in docs.text  # no CDN: its files are ours
    for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', docs.text):
        assert site.get(asset).status_code == 200, asset


# -- own data and rate limits ----------------------------------------------------------------------------


def _own_env(data: Path, **extra: str) -> dict[str, str]:
    return {
        "PAPERWIRE_DATA_DIR": str(data),
        "PAPERWIRE_DATABASE_URL": f"sqlite:///{data / 'paperwire.db'}",
        "PAPERWIRE_IMPORT_EMBED_LIMIT": "0",
        "PAPERWIRE_SEARCH_RATE_LIMIT": "0",
        "PAPERWIRE_BASE_URL": "",
        **extra,
    }


def _seed(env: dict[str, str]) -> None:
    store = Store.open(env["PAPERWIRE_DATABASE_URL"])
    store.apply(
        [
            Paper(
                id="2401.00001",
                version=3,
                title="<b>Bold</b> claims & $x<y$",
                abstract="Transformers everywhere.",
                authors=[Author("Ada Lovelace", "Engines & Co")],
                categories=["cs.CL"],
                published=datetime(2024, 1, 2, tzinfo=UTC),
                updated=datetime(2024, 3, 1, tzinfo=UTC),
                license="http://creativecommons.org/licenses/by/4.0/",
            ),
            Paper(
                id="hep-th/9901001",
                title="Transformers of strings",
                abstract="Old-style ids have a slash.",
                authors=[Author("Ed Witten")],
                categories=["hep-th"],
                published=datetime(1999, 1, 4, tzinfo=UTC),
            ),
        ]
    )
    store.close()


def test_own_data_versions_old_style_and_escaping(tmp_path):
    env = _own_env(tmp_path / "data")
    _seed(env)
    server = start_server(env)
    try:
        with httpx.Client(base_url=server.url) as c:
            paper = c.get("/api/v1/papers/2401.00001v1").json()
            assert paper["id"] == "2401.00001" and paper["version"] == 3
            assert paper["title"] == "<b>Bold</b> claims & $x<y$"  # JSON carries the text as it is
            assert paper["authors"] == [{"name": "Ada Lovelace", "affiliation": "Engines & Co"}]
            assert paper["license"].startswith("http://creativecommons.org")
            assert paper["url"] == server.url + "/papers/2401.00001"
            old = c.get("/api/v1/papers/hep-th/9901001").json()
            assert old["id"] == "hep-th/9901001" and old["published"] == "1999-01-04T00:00:00Z"
            similar = c.get("/api/v1/papers/hep-th/9901001/similar").json()  # no vectors: by title words
            assert similar["id"] == "hep-th/9901001"
            assert [h["id"] for h in similar["hits"]] == ["2401.00001"]
            hits = c.get("/api/v1/search", params={"q": "bold claims", "mode": "keyword"}).json()["hits"]
            assert hits[0]["id"] == "2401.00001"
            assert "<b>" not in hits[0]["title_html"] and "&lt;b&gt;" in hits[0]["title_html"]
            assert "<mark>" in hits[0]["title_html"]
            assert [p["id"] for p in c.get("/api/v1/lists/date/latest").json()["papers"]] == ["2401.00001"]
            old_day = c.get("/api/v1/lists/week/1999-W01").json()
            assert [p["id"] for p in old_day["papers"]] == ["hep-th/9901001"]
    finally:
        server.stop()


def test_every_search_route_is_rate_limited(tmp_path):
    env = _own_env(tmp_path / "data", PAPERWIRE_SEARCH_RATE_LIMIT="1")
    _seed(env)
    server = start_server(env)
    try:
        with httpx.Client(base_url=server.url) as c:
            assert c.get("/api/v1/search", params={"q": "transformers"}).status_code == 200
            for path in (
                "/api/v1/search?q=again",
                "/api/v1/papers/2401.00001/similar",
                "/api/v1/lists/date/2024-01-02",
                "/api/papers/search?q=transformers",
                "/api/daily_papers",
            ):
                r = c.get(path)
                assert "too many searches" in _error(r, 429), path
                assert int(r.headers["retry-after"]) >= 1
            # Reading one paper is not a search.
            assert c.get("/api/v1/papers/2401.00001").status_code == 200
            assert c.get("/api/papers/2401.00001").status_code == 200
    finally:
        server.stop()
