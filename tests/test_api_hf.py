"""The Hugging Face-compatible API, driven by the real ``huggingface_hub`` client and ``hf`` CLI against a
live ``paperwire serve``."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.hf_api import PaperAuthor, PaperInfo

from paperwire.models import Author, Paper
from paperwire.store import Store
from tests.live_server import LiveServer, start_server
from tests.sample_daily import LATEST_DAY, LATEST_IDS, SUBMITTED

SAMPLE = Path(__file__).resolve().parent.parent / "paperwire" / "sample" / "papers.jsonl.gz"
HOSTILE_TITLE = "<script>alert(1)</script> & $x<y$"


def _sample_days() -> dict[str, date]:
    with gzip.open(SAMPLE, "rt") as f:
        return {
            r["id"]: datetime.fromisoformat(r["published"]).astimezone(UTC).date() for r in map(json.loads, f)
        }


DAYS = _sample_days()


def _count(start: date, end: date) -> int:
    return sum(1 for d in DAYS.values() if start <= d <= end)


@pytest.fixture(scope="module")
def api(sample_site: LiveServer) -> HfApi:
    return HfApi(endpoint=sample_site.url, token=False)


@pytest.fixture(scope="module")
def own_site(tmp_path_factory) -> Iterator[LiveServer]:
    """A server over a few hand-made papers: versions, an old-style id, hostile text."""
    data = tmp_path_factory.mktemp("hf-own")
    env = {
        "PAPERWIRE_DATA_DIR": str(data),
        "PAPERWIRE_DATABASE_URL": f"sqlite:///{data / 'paperwire.db'}",
        "PAPERWIRE_IMPORT_EMBED_LIMIT": "0",
        "PAPERWIRE_SEARCH_RATE_LIMIT": "0",
        "PAPERWIRE_BASE_URL": "https://papers.example.org",
    }
    store = Store.open(env["PAPERWIRE_DATABASE_URL"])
    store.apply(
        [
            Paper(
                id="2401.00001",
                version=2,
                title=HOSTILE_TITLE,
                abstract="First paragraph with <b>markup</b>.\nSecond paragraph.",
                authors=[Author("Ada Lovelace", "Engines & Co"), Author("Charles Babbage")],
                categories=["cs.CL", "cs.AI"],
                published=datetime(2024, 1, 2, 10, 30, tzinfo=UTC),
                updated=datetime(2024, 2, 1, tzinfo=UTC),
                comments="10 pages",
                doi="10.1/x",
            ),
            Paper(
                id="hep-th/9901001",
                title="An old-style paper",
                abstract="Strings.",
                authors=[Author("Ed Witten")],
                categories=["hep-th"],
                published=datetime(1999, 1, 4, tzinfo=UTC),
            ),
        ]
    )
    store.close()
    server = start_server(env)
    yield server
    server.stop()


def _assert_paper_info(info: PaperInfo) -> None:
    """Types every PaperInfo field should have when it comes from this server."""
    assert isinstance(info, PaperInfo)
    assert isinstance(info.id, str) and info.id
    assert info.authors and all(isinstance(a, PaperAuthor) and a.name for a in info.authors)
    assert all(a.hidden is False for a in info.authors)
    assert isinstance(info.published_at, datetime) and info.published_at.tzinfo is not None
    assert isinstance(info.title, str) and info.title
    assert isinstance(info.summary, str) and info.summary
    assert info.upvotes == 0
    assert info.comments == 0  # the comment count, not arXiv's comments text
    assert isinstance(info.discussion_id, str) and len(info.discussion_id) == 24
    assert info.ai_keywords == []


# -- search ---------------------------------------------------------------------------------------------


def test_list_papers_finds_the_paper(api):
    papers = list(api.list_papers(query="diphoton production", limit=5))
    assert 1 <= len(papers) <= 5
    top = papers[0]
    _assert_paper_info(top)
    assert top.id == "0704.0001"
    assert top.title.startswith("Calculation of prompt diphoton production cross sections")
    assert [a.name for a in top.authors][:2] == ["C. Balázs", "E. L. Berger"]
    assert top.published_at == datetime(2007, 4, 2, 19, 18, 42, tzinfo=UTC)
    assert top.submitted_at == top.published_at  # a day's list is the papers published that day
    assert top.summary.startswith("A fully differential calculation")
    assert top.source == "arxiv"
    assert top.submitted_by is None and top.organization is None and top.github_repo is None


def test_list_papers_by_arxiv_link(api):
    """What a Hugging Face user pastes into search: a link to the paper."""
    papers = list(api.list_papers(query="https://huggingface.co/papers/0704.0001"))
    assert [p.id for p in papers] == ["0704.0001"]


def test_list_papers_limit_and_raw_shape(api, sample_site):
    assert len(list(api.list_papers(query="quantum", limit=3))) == 3
    items = httpx.get(sample_site.url + "/api/papers/search", params={"q": "diphoton", "limit": 2}).json()
    assert isinstance(items, list) and len(items) == 2
    item = items[0]
    assert {"paper", "title", "summary", "publishedAt", "numComments", "thumbnail", "submittedBy"} <= set(
        item
    )
    assert "authors" not in item and "comments" not in item  # they would clobber PaperInfo's parsed fields
    paper = item["paper"]
    assert paper["id"] == "0704.0001" and paper["upvotes"] == 0
    assert paper["publishedAt"] == "2007-04-02T19:18:42.000Z"
    assert paper["submittedOnDailyAt"] is None and paper["submittedOnDailyBy"] is None
    assert all(set(a) == {"_id", "name", "hidden"} for a in paper["authors"])


def test_search_errors_are_json(sample_site):
    for params, fragment in [
        ({"q": "a" * 501}, "too long"),
        ({"q": "bad\x01query"}, "control characters"),
        ({"q": "x", "limit": 101}, "100"),
        ({"q": "x", "limit": 0}, "limit"),
    ]:
        r = httpx.get(sample_site.url + "/api/papers/search", params=params)
        assert r.status_code == 400, params
        assert r.headers["content-type"].startswith("application/json")
        assert fragment in r.json()["error"]


# -- one paper ------------------------------------------------------------------------------------------


def test_paper_info_by_any_spelling(api):
    info = api.paper_info("0704.0001v2")
    _assert_paper_info(info)
    assert info.id == "0704.0001"
    assert info.submitted_at is None  # never submitted to a daily list
    assert info.linked_models == [] and info.num_total_models == 0
    assert info.linked_datasets == [] and info.linked_spaces == []
    old = api.paper_info("cond-mat/0702661")
    _assert_paper_info(old)
    assert old.id == "cond-mat/0702661"
    assert "Heisenberg pyrochlore" in old.title
    assert old.published_at.date() == date(2007, 2, 27)


def test_paper_info_unknown_or_invalid_is_404(api, sample_site):
    with pytest.raises(HfHubHTTPError) as err:
        api.paper_info("0704.9999")
    assert err.value.response.status_code == 404
    for path in ("/api/papers/0704.9999", "/api/papers/not-an-id", "/api/papers/hep-th/0101999v3"):
        r = httpx.get(sample_site.url + path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["error"]


def test_own_papers_versions_old_style_and_hostile_text(own_site):
    api = HfApi(endpoint=own_site.url, token=False)
    info = api.paper_info("2401.00001v1")
    assert info.id == "2401.00001" and info.title == HOSTILE_TITLE
    assert info.comments == 0  # arXiv's "10 pages" never reaches PaperInfo.comments
    assert [a.name for a in info.authors] == ["Ada Lovelace", "Charles Babbage"]
    assert info.published_at == datetime(2024, 1, 2, 10, 30, tzinfo=UTC)
    old = api.paper_info("hep-th/9901001")
    assert old.id == "hep-th/9901001" and old.title == "An old-style paper"
    assert api.paper_info("hep-th/9901001v1").id == "hep-th/9901001"

    md = api.read_paper("2401.00001v2")
    assert re.search(r"(?<!\\)<[A-Za-z/]", md) is None  # no raw HTML when the Markdown is rendered
    assert md.startswith("# \\<script>alert(1)\\</script> & x\\<y\n")
    assert "**Authors:** Ada Lovelace, Charles Babbage" in md
    assert "https://papers.example.org/papers/2401.00001" in md  # PAPERWIRE_BASE_URL wins over the request
    assert "First paragraph with \\<b>markup\\</b>.\n\nSecond paragraph." in md
    assert "[10.1/x](https://doi.org/10.1/x)" in md and "**Comments:** 10 pages" in md
    assert "cs.CL (primary), cs.AI" in md
    assert "# An old-style paper" in api.read_paper("hep-th/9901001")

    daily = list(api.list_daily_papers(date="2024-01-02"))
    assert [p.id for p in daily] == ["2401.00001"]
    assert [p.id for p in api.list_daily_papers()] == ["2401.00001"]  # the latest day with papers


# -- Markdown -------------------------------------------------------------------------------------------


def test_read_paper_markdown(api, sample_site):
    md = api.read_paper("cond-mat/0702661")
    assert md.startswith("# Low temperature specific heat and possible gap")
    assert "Adrian Del Maestro, Michel J. P. Gingras" in md
    assert "[arXiv:cond-mat/0702661](https://arxiv.org/abs/cond-mat/0702661)" in md
    assert "https://arxiv.org/pdf/cond-mat/0702661" in md
    assert "published 2007-02-27" in md and "(v2)" in md
    assert "cond-mat.mtrl-sci (primary), cond-mat.stat-mech" in md
    assert "Phys. Rev. B 76, 064418 (2007)" in md
    assert "## Abstract\n\nThe Gd2Sn2O7 pyrochlore Heisenberg antiferromagnet" in md
    r = httpx.get(sample_site.url + "/papers/0704.0001v2.md")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/markdown; charset=utf-8"
    assert r.text.startswith("# Calculation of prompt diphoton")
    with pytest.raises(HfHubHTTPError) as err:
        api.read_paper("0704.9999")
    assert err.value.response.status_code == 404
    assert httpx.get(sample_site.url + "/papers/nonsense.md").status_code == 404
    # The HTML page of the paper is still the pages router's.
    page = httpx.get(sample_site.url + "/papers/0704.0001")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


# -- daily lists ----------------------------------------------------------------------------------------


def test_daily_papers_for_a_date(api):
    expected = _count(date(2007, 4, 2), date(2007, 4, 2))
    assert expected > 50
    papers = [p for n in (0, 1) for p in api.list_daily_papers(date="2007-04-02", p=n, limit=100)]
    assert len(papers) == len({p.id for p in papers}) == expected
    assert all(p.published_at.date() == date(2007, 4, 2) for p in papers)
    for p in papers[:5]:
        _assert_paper_info(p)
    newest_first = [p.published_at for p in papers]
    assert newest_first == sorted(newest_first, reverse=True)  # sort=publishedAt is the default
    trending = [
        p for n in (0, 1) for p in api.list_daily_papers(date="2007-04-02", sort="trending", p=n, limit=100)
    ]
    assert {p.id for p in trending} == {p.id for p in papers}


def test_daily_papers_pages_count_from_zero(api):
    expected = _count(date(2007, 4, 2), date(2007, 4, 2))
    pages = [[p.id for p in api.list_daily_papers(date="2007-04-02", p=n, limit=50)] for n in range(3)]
    assert len(pages[0]) == 50 and len(pages[1]) == 50 and len(pages[2]) == expected - 100
    assert len(set(pages[0]) | set(pages[1]) | set(pages[2])) == expected
    first = [p.id for p in api.list_daily_papers(date="2007-04-02", limit=50)]
    assert first == pages[0]  # no p is page 0


def test_daily_papers_week_and_month(api):
    week = list(api.list_daily_papers(week="2007-W13", limit=100))  # Mon 26 March - Sun 1 April 2007
    assert len(week) == _count(date(2007, 3, 26), date(2007, 4, 1)) > 0
    assert all(date(2007, 3, 26) <= p.published_at.date() <= date(2007, 4, 1) for p in week)
    month = [p.id for n in range(3) for p in api.list_daily_papers(month="2007-04", p=n, limit=100)]
    assert len(month) == len(set(month)) == _count(date(2007, 4, 1), date(2007, 4, 30)) == 157


def test_daily_papers_default_is_the_latest_day(api):
    """With no period: the latest day anyone submitted papers to (the sample's daily list), ranked by
    upvotes, with who submitted them and when."""
    papers = list(api.list_daily_papers())
    assert {p.id for p in papers} == LATEST_IDS
    assert {p.submitted_at.date() for p in papers} == {LATEST_DAY}
    assert [p.upvotes for p in papers] == sorted((p.upvotes for p in papers), reverse=True)
    assert [p.upvotes for p in papers] == sorted((SUBMITTED[p.id][1] for p in papers), reverse=True)


def test_daily_papers_submitter_is_nobody_yet(api):
    assert list(api.list_daily_papers(date="2007-04-02", submitter="akhaliq")) == []


def test_daily_papers_errors(sample_site):
    for params, fragment in [
        ({"date": "2007-4-2"}, "YYYY-MM-DD"),
        ({"date": "2007-02-30"}, "date"),
        ({"week": "2007-14"}, "YYYY-Www"),
        ({"week": "2007-W54"}, "week"),
        ({"month": "2007-13"}, "YYYY-MM"),
        ({"date": "2007-04-02", "week": "2007-W14"}, "at most one"),
        ({"month": "2007-04", "week": "2007-W14", "date": "2007-04-02"}, "at most one"),
        ({"sort": "upvotes"}, "sort"),
        ({"p": -1}, "p"),
        ({"limit": 1000}, "100"),
        ({"date": "9999-12-31"}, "date"),
        ({"month": "0001-01"}, "month"),
    ]:
        r = httpx.get(sample_site.url + "/api/daily_papers", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.headers["content-type"].startswith("application/json")
        assert fragment in r.json()["error"], (params, r.text)
    r = httpx.get(sample_site.url + "/api/daily_papers", params={"date": "2007-04-02", "p": 10_000})
    assert r.status_code == 400 and "10,000" in r.json()["error"]


# -- the hf CLI -----------------------------------------------------------------------------------------


def _hf(site: LiveServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    hf = Path(sys.executable).parent / "hf"
    if not hf.exists():
        pytest.skip("this huggingface_hub has no hf CLI")
    env = {
        # huggingface_hub also reads TRANSFORMERS_OFFLINE as offline mode (set in this process once a
        # test has loaded the embedding model).
        **{k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))},
        "HF_ENDPOINT": site.url,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "NO_COLOR": "1",
    }
    return subprocess.run([str(hf), *args], env=env, capture_output=True, text=True, timeout=120)


def test_hf_cli_papers_commands(sample_site, tmp_path):
    search = _hf(sample_site, tmp_path, "papers", "search", "diphoton", "--limit", "3", "--format", "json")
    assert search.returncode == 0, search.stderr
    found = json.loads(search.stdout)
    assert found[0]["id"] == "0704.0001" and found[0]["published_at"].startswith("2007-04-02T19:18:42")

    ls = _hf(
        sample_site,
        tmp_path,
        "papers",
        "ls",
        "--date",
        "2007-04-02",
        "--sort",
        "trending",
        "--format",
        "json",
    )
    assert ls.returncode == 0, ls.stderr
    listed = json.loads(ls.stdout)
    assert len(listed) == 50 and all(p["published_at"].startswith("2007-04-02") for p in listed)

    week = _hf(sample_site, tmp_path, "papers", "ls", "--week", "2007-W14", "--limit", "5")
    assert week.returncode == 0, week.stderr
    assert "ID" in week.stdout and "0704." in week.stdout

    info = _hf(sample_site, tmp_path, "papers", "info", "cond-mat/0702661", "--format", "json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["id"] == "cond-mat/0702661"

    read = _hf(sample_site, tmp_path, "papers", "read", "0704.0001")
    assert read.returncode == 0, read.stderr
    assert read.stdout.startswith("# Calculation of prompt diphoton production")

    missing = _hf(sample_site, tmp_path, "papers", "info", "0704.9999")
    assert missing.returncode != 0 and "not found" in (missing.stdout + missing.stderr)
