"""Digests: when each subscriber's is due, which papers it holds and why, the message it becomes, and
the commands that send and preview it (real SMTP server, real HTTP server for the unsubscribe link).
Crash, outage and concurrency tests of delivery are in tests/test_digest_delivery.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from paperwire.config import get_settings
from paperwire.digest.choose import Chooser
from paperwire.digest.run import DigestComposer, compose_due
from paperwire.digest.schedule import current_period, due_period, next_delivery
from paperwire.models import Author, Paper
from paperwire.search.keyword import KeywordIndex
from paperwire.search.service import SearchEngine
from paperwire.search.vectors import VectorIndex
from paperwire.store import Store
from paperwire.store import outbox as outbox_store
from paperwire.store import subscriptions as subs
from paperwire.store.subscriptions import Preferences, Subscriber, Topic
from paperwire.store.votes import ExternalListing, record_external
from tests.smtp_server import SmtpServer
from tests.test_subscriptions import _start, wait_for_mail

DAY = date(2026, 3, 5)  # a Thursday: the catalogue's newest day
NOW = datetime(2026, 3, 5, 9, 30, tzinfo=UTC)
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
NASTY = "<script>alert(1)</script> & $x<y$"


def paper(
    pid: str, title: str, days_ago: int, cats: list[str], authors: list[str], abstract: str = ""
) -> Paper:
    published = datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=UTC) - timedelta(days=days_ago)
    return Paper(
        id=pid,
        title=title,
        abstract=abstract or f"We study {title.lower()} in depth.",
        authors=[Author(a) for a in authors],
        categories=cats,
        published=published,
        updated=published,
    )


PAPERS = [
    paper(
        "2603.00001", "Speculative decoding for fast language model inference", 0, ["cs.CL"], ["Ada Lovelace"]
    ),
    paper("2603.00002", "Reward models for preference learning", 1, ["cs.LG", "cs.CL"], ["Grace Hopper"]),
    paper("2603.00003", "Graph neural networks for molecules", 0, ["q-bio.BM"], ["Rosalind Franklin"]),
    paper("2603.00004", "Reward model overoptimization at scale", 2, ["cs.CL"], ["Alan Turing"]),
    paper("2601.00005", "Reward models, an old survey", 60, ["cs.LG"], ["Alan Turing"]),
    paper(
        "2603.00006", NASTY, 0, ["cs.CL"], ["Eve <eve@example.org>"], abstract=f"An abstract with {NASTY}."
    ),
]


def subscriber(store: Store, email: str = "ada@example.org", **prefs) -> Subscriber:  # noqa: ANN003
    sub = subs.subscribe(store, email, now=LONG_AGO, verified=True)
    return subs.save_preferences(store, sub.id, Preferences(**prefs))


@pytest.fixture
def catalogue(sqlite_store: Store, tmp_path: Path) -> Iterator[tuple[Store, SearchEngine]]:
    store = sqlite_store
    store.apply(PAPERS)
    record_external(
        store,
        [
            ExternalListing("2603.00001", DAY, NOW - timedelta(hours=3), "hub-user", 42),
            ExternalListing("2603.00002", DAY - timedelta(days=1), NOW - timedelta(days=1), "hub-user", 5),
        ],
    )
    keyword = KeywordIndex(tmp_path / "keyword")
    keyword.catch_up(store)
    yield store, SearchEngine(store, keyword)


# -- when ---------------------------------------------------------------------------------------------


def sub_with(**values) -> Subscriber:  # noqa: ANN003
    base = Subscriber(
        id=1,
        email="ada@example.org",
        user_id=None,
        status="active",
        created_at=LONG_AGO,
        confirmed_at=LONG_AGO,
        unsubscribed_at=None,
        frequency="daily",
        hour=8,
        timezone="UTC",
        size=10,
        weekends=False,
        empty_note=False,
        token_version=1,
        last_confirmation_sent_at=None,
    )
    return replace(base, **values)


def test_daily_period_follows_the_local_hour_and_time_zone():
    at = lambda h, m=0: datetime(2026, 3, 5, h, m, tzinfo=UTC)  # noqa: E731 - Thursday
    assert current_period("daily", 8, "UTC", False, at(7, 59)).key == "daily:2026-03-04"
    assert current_period("daily", 8, "UTC", False, at(8)).key == "daily:2026-03-05"
    # 08:00 in New York is 13:00 UTC in March (before daylight saving time starts on the 8th).
    assert current_period("daily", 8, "America/New_York", False, at(12, 59)).key == "daily:2026-03-04"
    period = current_period("daily", 8, "America/New_York", False, at(13))
    assert period.key == "daily:2026-03-05" and period.scheduled == at(13)
    # Tokyo is already on Friday the 6th at 23:00 UTC on the 5th.
    assert current_period("daily", 7, "Asia/Tokyo", False, at(23)).key == "daily:2026-03-06"


def test_daily_digests_skip_weekends_unless_asked():
    saturday = datetime(2026, 3, 7, 9, tzinfo=UTC)
    assert due_period(sub_with(), saturday) is None  # Friday's is 25 h old: missed, not sent late
    assert due_period(sub_with(weekends=True), saturday).key == "daily:2026-03-07"
    monday = datetime(2026, 3, 9, 8, 5, tzinfo=UTC)
    assert due_period(sub_with(), monday).key == "daily:2026-03-09"
    assert next_delivery(sub_with(), datetime(2026, 3, 6, 9, tzinfo=UTC)) == datetime(
        2026, 3, 9, 8, tzinfo=UTC
    )


def test_weekly_digests_go_out_on_mondays_and_catch_up_for_three_days():
    wednesday = datetime(2026, 3, 11, 9, tzinfo=UTC)
    period = due_period(sub_with(frequency="weekly"), wednesday)
    assert period.key == "weekly:2026-W11" and period.scheduled == datetime(2026, 3, 9, 8, tzinfo=UTC)
    assert due_period(sub_with(frequency="weekly"), datetime(2026, 3, 13, 9, tzinfo=UTC)) is None
    assert next_delivery(sub_with(frequency="weekly"), wednesday) == datetime(2026, 3, 16, 8, tzinfo=UTC)


def test_a_period_is_due_once_and_never_right_after_another():
    assert due_period(sub_with(), NOW).key == "daily:2026-03-05"
    assert due_period(sub_with(last_digest_period="daily:2026-03-05"), NOW) is None
    # Confirmed after today's delivery time: the first digest is tomorrow's.
    assert due_period(sub_with(confirmed_at=NOW - timedelta(minutes=5)), NOW) is None
    # A time-zone change must not bring a second digest within hours of the last one.
    assert due_period(sub_with(last_digest_at=NOW - timedelta(hours=3)), NOW) is None
    assert due_period(sub_with(status="unsubscribed"), NOW) is None
    assert due_period(sub_with(frequency="off"), NOW) is None
    assert due_period(sub_with(timezone="Not/AZone"), NOW).key == "daily:2026-03-05"  # falls back to UTC


# -- what ---------------------------------------------------------------------------------------------


def test_trending_first_then_topics_with_reasons(catalogue):
    store, engine = catalogue
    sub = subscriber(
        store,
        size=5,
        topics=(
            Topic("category", "q-bio.*"),
            Topic("author", "Alan Turing"),
            Topic("query", "reward model"),
        ),
    )
    period = due_period(sub, NOW)
    digest = Chooser(store, engine).choose(sub, period)
    trending = [(p.paper.id, p.reason) for p in digest.trending]
    personal = {p.paper.id: p.reasons for p in digest.personal}
    # A third of five papers (rounded) is trending; the most upvoted first.
    assert trending[0] == ("2603.00001", "trending: 42 upvotes")
    assert len(digest.trending) + len(digest.personal) <= 5
    assert personal["2603.00003"] == ["new in q-bio.*"]
    assert "new from an author you follow: Alan Turing" in personal["2603.00004"]
    assert "matches your search “reward model”" in personal["2603.00004"]
    assert "2601.00005" not in digest.paper_ids  # published long before the period's window
    # The trending paper that also matches a topic says both.
    both = next(p for p in digest.picks if p.paper.id == "2603.00002")
    assert both.reasons[0] == "trending: 5 upvotes" and "matches your search “reward model”" in both.reasons


def test_no_paper_is_sent_twice_and_nothing_new_is_empty(catalogue):
    store, engine = catalogue
    sub = subscriber(store, topics=(Topic("query", "reward model"),))
    chooser = Chooser(store, engine)
    first = chooser.choose(sub, due_period(sub, NOW))
    assert set(first.paper_ids) >= {"2603.00001", "2603.00002", "2603.00004"}
    again = chooser.choose(sub, due_period(sub, NOW), sent=set(first.paper_ids))
    assert not set(again.paper_ids) & set(first.paper_ids)
    everything = {p.id for p in PAPERS}
    assert chooser.choose(sub, due_period(sub, NOW), sent=everything).empty


def test_a_search_that_matches_only_some_words_is_not_a_match(catalogue):
    store, engine = catalogue
    sub = subscriber(store, size=5, topics=(Topic("query", "reward zebra"),))
    digest = Chooser(store, engine).choose(sub, due_period(sub, NOW))
    assert digest.personal == []


def test_more_like_these_through_the_vectors(catalogue, tmp_path):
    store, engine = catalogue
    rng = np.random.default_rng(7)
    base = rng.normal(size=16)
    vectors = {p.id: rng.normal(size=16) for p in PAPERS}
    vectors["2601.00005"] = base  # the paper they follow (old)
    vectors["2603.00003"] = base + 0.1 * rng.normal(size=16)  # a new one very like it
    ids = list(vectors)
    matrix = np.array([vectors[i] / np.linalg.norm(vectors[i]) for i in ids], dtype=np.float32)
    with VectorIndex(tmp_path / "vectors", 16) as index:
        index.add(ids, matrix)
    engine.vectors = VectorIndex(tmp_path / "vectors")
    sub = subscriber(store, size=5, topics=(Topic("like", "2601.00005"),))
    digest = Chooser(store, engine).choose(sub, due_period(sub, NOW))
    assert [p.paper.id for p in digest.personal][:1] == ["2603.00003"]
    assert digest.personal[0].reason == "like “Reward models, an old survey”, a paper you follow"
    assert "2601.00005" not in digest.paper_ids


# -- the message --------------------------------------------------------------------------------------


def parsed(raw: bytes):  # noqa: ANN201
    return message_from_bytes(raw, policy=policy.default)


def test_message_parts_headers_links_and_escaping(catalogue, monkeypatch):
    store, engine = catalogue
    monkeypatch.setenv("PAPERWIRE_SECRET_KEY", "digest-test-key")
    monkeypatch.setenv("PAPERWIRE_UNSUBSCRIBE_MAILTO", "unsubscribe@paperwire.test")
    monkeypatch.setenv("PAPERWIRE_MAIL_FROM", "paperwire <digest@paperwire.test>")
    settings = get_settings()
    sub = subscriber(store, size=10, topics=(Topic("category", "cs.CL"),))
    composer = DigestComposer(store, engine, settings, base="https://papers.example.org")
    digest = composer.digest(sub, due_period(sub, NOW), set())
    assert "2603.00006" in digest.paper_ids
    message = parsed(composer.message_bytes(digest))
    assert message["To"] == "ada@example.org"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsub = message["List-Unsubscribe"]
    assert (
        "<https://papers.example.org/unsubscribe?token=" in unsub
        and "<mailto:unsubscribe@paperwire.test?" in unsub
    )
    assert message["List-Id"] == "paperwire daily digest <digest.papers.example.org>"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    # Every paper, its reason and absolute links in both parts.
    for pick in digest.picks:
        assert f"https://papers.example.org/papers/{pick.paper.id}" in text
        assert f"https://papers.example.org/papers/{pick.paper.id}" in html
        assert pick.reason in text
    assert "trending: 42 upvotes" in html and "new in cs.CL" in html
    assert "https://papers.example.org/preferences?token=" in text and "/preferences?token=" in html
    assert "https://papers.example.org/unsubscribe?token=" in html
    # Titles and abstracts are data: escaped in HTML, as they are in text; the HTML has no script at all.
    # (LaTeX is shown readably: $x<y$ becomes x<y.)
    assert "<script>alert(1)</script> & x<y" in text
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; x&lt;y" in html
    assert "Eve &lt;eve@example.org&gt;" in html
    # Made for mail clients: tables, inline styles, dark mode, phone widths; a subject of one line.
    assert "<table" in html and 'style="' in html and "prefers-color-scheme: dark" in html
    assert 'name="viewport"' in html and "max-width:600px" in html
    assert "\n" not in message["Subject"] and "Speculative decoding" in message["Subject"]


def test_a_period_with_nothing_new_sends_nothing_or_a_note(catalogue, tmp_path, monkeypatch):
    store, engine = catalogue
    monkeypatch.setenv("PAPERWIRE_SECRET_KEY", "digest-test-key")
    quiet = subscriber(store, "quiet@example.org")
    noted = subscriber(store, "noted@example.org", empty_note=True)
    everything = [p.id for p in PAPERS]
    for sub in (quiet, noted):  # both were sent everything already
        with subs.digest_batch(store, {sub.id: "daily:2026-03-04"}, now=NOW - timedelta(days=1)) as batch:
            batch.record(subs.QueuedDigest(sub.id, "daily:2026-03-04", tuple(everything)))
        subs_row = subs.get_subscriber(store, sub.id)
        assert subs_row.last_digest_period == "daily:2026-03-04"
    report = compose_due(
        store, engine, get_settings(), now=NOW + timedelta(hours=14), base="https://p.example"
    )
    assert (report.due, report.queued, report.empty) == (2, 1, 1)
    assert subs.digest_history(store, quiet.id)[-1] == ("daily:2026-03-05", "empty", None)
    key = subs.digest_history(store, noted.id)[-1][2]
    assert outbox_store.status_of(store, key) == "pending"


def test_compose_due_queues_each_due_subscriber_once(catalogue, monkeypatch):
    store, engine = catalogue
    monkeypatch.setenv("PAPERWIRE_SECRET_KEY", "digest-test-key")
    due = [subscriber(store, f"r{i}@example.org") for i in range(3)]
    later = subscriber(store, "late@example.org", hour=10)  # later today (yesterday's is 23.5 h old)
    weekly = subscriber(store, "weekly@example.org", frequency="weekly")  # Thursday: this week's is old
    pending = subs.subscribe(store, "pending@example.org", now=LONG_AGO)
    first = compose_due(store, engine, get_settings(), now=NOW, base="https://p.example")
    assert (first.checked, first.due, first.queued) == (5, 3, 3)
    assert compose_due(store, engine, get_settings(), now=NOW, base="https://p.example").due == 0
    for sub in due:
        assert [h[0] for h in subs.digest_history(store, sub.id)] == ["daily:2026-03-05"]
    for sub in (later, weekly, pending):
        assert subs.digest_history(store, sub.id) == []


# -- the commands, with a real SMTP server and the real web server ---------------------------------------


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "paperwire.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


@pytest.fixture
def site(tmp_path) -> Iterator[tuple]:
    with SmtpServer() as smtp:
        # The site's own mail thread sweeps the outbox too; slowed here so that what the CLI reports
        # ("1 sent") is what the CLI did, not a race with the site.
        server = _start(tmp_path / "site", smtp, PAPERWIRE_MAIL_SWEEP_SECONDS="600")
        env = {**server.env, "PAPERWIRE_BASE_URL": server.url, "PAPERWIRE_MAIL_SWEEP_SECONDS": "0.5"}
        store = Store.open(env["PAPERWIRE_DATABASE_URL"], run_migrations=False)
        store.apply(PAPERS)
        try:
            yield server, smtp, store, env
        finally:
            store.close()
            server.stop()


def test_digest_run_sends_mail_whose_unsubscribe_link_works(site):
    server, smtp, store, env = site
    sub = subscriber(store, "reader@example.org", topics=(Topic("category", "cs.CL"),))
    out = cli(env, "digest", "run", "--now", NOW.isoformat()).stdout
    assert "1 of 1 subscribers due: 1 digests queued" in out and "1 sent" in out
    [message] = wait_for_mail(smtp, "reader@example.org")
    text = message.get_body(("plain",)).get_content()
    assert "Speculative decoding for fast language model inference" in text
    # The links work on the real site.
    paper_link = f"{server.url}/papers/2603.00001"
    assert paper_link in text and httpx.get(paper_link).status_code == 200
    prefs = next(w for w in text.split() if "/preferences?token=" in w)
    page = httpx.get(prefs)
    assert page.status_code == 200 and "Your next digest: <strong>" in page.text
    # RFC 8058: the mail provider POSTs "List-Unsubscribe=One-Click" to the header's https URL.
    unsub = message["List-Unsubscribe"].strip("<>").split(">")[0]
    assert urlsplit(unsub).netloc == urlsplit(server.url).netloc
    r = httpx.post(
        unsub,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    assert subs.get_subscriber(store, sub.id).status == "unsubscribed"
    # Nothing more goes to it, tomorrow or ever.
    out = cli(env, "digest", "run", "--now", (NOW + timedelta(days=1)).isoformat()).stdout
    assert "0 of 0 subscribers due" in out
    assert len(smtp.handler.to("reader@example.org")) == 1
    # Running again for the same period sends nothing either (each period once).
    cli(env, "digest", "run", "--now", NOW.isoformat())
    assert len(smtp.handler.to("reader@example.org")) == 1


def test_digest_preview_prints_and_saves_without_sending(site, tmp_path):
    server, smtp, store, env = site
    sub = subscriber(store, "preview@example.org", topics=(Topic("author", "Alan Turing"),))
    eml = tmp_path / "digest.eml"
    html = tmp_path / "digest.html"
    out = cli(
        env,
        "digest",
        "preview",
        "Preview@Example.org",
        "--now",
        NOW.isoformat(),
        "--eml",
        str(eml),
        "--html",
        str(html),
    ).stdout
    assert out.startswith("Subject: ") and "new from an author you follow: Alan Turing" in out
    assert parsed(eml.read_bytes())["To"] == "preview@example.org"
    assert "<table" in html.read_text()
    assert subs.digest_history(store, sub.id) == [] and smtp.handler.to("preview@example.org") == []
    missing = cli(env, "digest", "preview", "nobody@example.org", check=False)
    assert missing.returncode == 1 and "nobody@example.org has no subscription" in missing.stderr
    bad = cli(env, "digest", "run", "--now", "yesterday", check=False)
    assert bad.returncode == 2 and "--now must be an ISO 8601 time" in bad.stderr


def test_worker_once_sends_what_is_due_now(site):
    server, smtp, store, env = site
    now = datetime.now(UTC)
    sub = subs.subscribe(store, "worker@example.org", now=now - timedelta(days=2), verified=True)
    subs.save_preferences(store, sub.id, Preferences(hour=now.hour, weekends=True))
    # Its papers are published "today" relative to the catalogue's newest day, whatever today is.
    result = cli({**env, "PAPERWIRE_IMPORT_EMBED_LIMIT": "0"}, "worker", "--once")
    assert "digests: 1 of 1 subscribers due: 1 digests queued" in result.stdout, result.stdout + result.stderr
    wait_for_mail(smtp, "worker@example.org")
    assert "paperwire worker stopped." in result.stdout
