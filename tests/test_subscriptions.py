"""Digest subscriptions: double opt-in, preferences by signed link, one-click unsubscribe (RFC 8058).

The store functions run on SQLite and a real PostgreSQL; the web flow runs against a real
`paperwire serve` that sends its mail to a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from paperwire.config import get_settings
from paperwire.mail import compose, enqueue
from paperwire.models import Author, Paper
from paperwire.store import Store
from paperwire.store import outbox as outbox_store
from paperwire.store import subscriptions as subs
from paperwire.store.subscriptions import Preferences, SubscriptionRejected, Topic
from paperwire.web.auth import sign_token
from paperwire.web.subscribe import (
    PURPOSE_CONFIRM,
    PURPOSE_PREFERENCES,
    PURPOSE_UNSUBSCRIBE,
    make_confirm_token,
    make_link_token,
    parse_preferences,
    read_confirm_token,
    subscriber_from_token,
    unsubscribe_headers,
)
from tests.live_server import LiveServer, site_env, start_server
from tests.smtp_server import SmtpServer

SECRET = "test-secret-key-for-subscriptions"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PAPER = Paper(
    id="2403.00001",
    title="A paper to be like",
    abstract="More like this.",
    authors=[Author("Grace Hopper")],
    categories=["cs.LG"],
    published=datetime(2026, 3, 1, tzinfo=UTC),
)


# -- the store ------------------------------------------------------------------------------------------


def test_double_opt_in_and_unsubscribe_in_the_store(store: Store):
    sub = subs.subscribe(store, "Ada@Example.org", now=T0)
    assert (sub.email, sub.status, sub.token_version, sub.confirmed_at) == (
        "ada@example.org",
        "pending",
        1,
        None,
    )
    assert (sub.frequency, sub.hour, sub.timezone, sub.size, sub.weekends, sub.empty_note) == (
        "daily",
        8,
        "UTC",
        10,
        False,
        False,
    )
    assert subs.subscribe(store, "ada@example.org", now=T0).id == sub.id  # idempotent
    every = timedelta(minutes=10)
    assert subs.claim_mail_slot(store, sub.id, now=T0, every=every)
    assert not subs.claim_mail_slot(store, sub.id, now=T0 + timedelta(minutes=5), every=every)
    assert subs.claim_mail_slot(store, sub.id, now=T0 + every, every=every)
    assert subs.get_subscriber(store, sub.id).last_confirmation_sent_at == T0 + every

    active = subs.confirm(store, sub.id, now=T0 + timedelta(hours=1), issued=T0)
    assert active.status == "active" and active.confirmed_at == T0 + timedelta(hours=1)
    assert subs.confirm(store, sub.id, now=T0 + timedelta(hours=2)).confirmed_at == active.confirmed_at
    assert [s.email for s in subs.active_subscribers(store)] == ["ada@example.org"]

    gone = subs.unsubscribe(store, sub.id, now=T0 + timedelta(days=1))
    assert gone.status == "unsubscribed" and gone.unsubscribed_at == T0 + timedelta(days=1)
    assert subs.unsubscribe(store, sub.id, now=T0 + timedelta(days=2)).unsubscribed_at == gone.unsubscribed_at
    assert subs.active_subscribers(store) == []
    assert subs.unsubscribe(store, 999_999, now=T0) is None

    # Signing up again needs a new confirmation; a link from before the unsubscription cannot give it.
    assert subs.subscribe(store, "ada@example.org", now=T0 + timedelta(days=3)).status == "pending"
    with pytest.raises(SubscriptionRejected, match="unsubscribed after the link was sent"):
        subs.confirm(store, sub.id, now=T0 + timedelta(days=3), issued=T0)
    assert (
        subs.confirm(store, sub.id, now=T0 + timedelta(days=3), issued=T0 + timedelta(days=3)).status
        == "active"
    )
    with pytest.raises(SubscriptionRejected):
        subs.confirm(store, 999_999, now=T0)

    # A verified address (a signed-in user's own) is active at once.
    bob = subs.subscribe(store, "bob@example.org", now=T0, verified=True)
    assert bob.status == "active" and bob.confirmed_at == T0
    assert subs.mark_bounced(store, "bob@example.org", now=T0)
    assert subs.get_subscriber_by_email(store, "BOB@example.org").status == "bounced"
    assert subs.count_by_status(store) == {"active": 1, "bounced": 1}


def test_preferences_topics_and_revoking_links(store: Store):
    sub = subs.subscribe(store, "ada@example.org", now=T0)
    prefs = Preferences(
        frequency="weekly",
        hour=18,
        timezone="Europe/Berlin",
        size=25,
        weekends=True,
        empty_note=True,
        topics=(
            Topic("query", "diffusion models"),
            Topic("category", "cs.CL"),
            Topic("category", "cs.*"),
            Topic("category", "cs.CL"),  # duplicates are stored once
            Topic("author", "Grace Hopper"),
        ),
    )
    saved = subs.save_preferences(store, sub.id, prefs)
    assert saved.preferences == replace(
        prefs,
        topics=(
            Topic("category", "cs.*"),
            Topic("category", "cs.CL"),
            Topic("author", "Grace Hopper"),
            Topic("query", "diffusion models"),
        ),
    )
    again = subs.save_preferences(store, sub.id, Preferences(topics=(Topic("author", "Ada Lovelace"),)))
    assert again.topics == (Topic("author", "Ada Lovelace"),) and again.frequency == "daily"
    assert subs.save_preferences(store, 999_999, prefs) is None
    assert subs.revoke_links(store, sub.id) == 2
    assert subs.get_subscriber(store, sub.id).token_version == 2


def test_digest_batch_records_each_period_once(store: Store):
    store.apply([PAPER])
    sub = subs.subscribe(store, "ada@example.org", now=T0, verified=True)
    other = subs.subscribe(store, "bob@example.org", now=T0)  # pending: never composed for
    period = "daily:2026-03-02"
    with subs.digest_batch(store, {sub.id: period, other.id: period}, now=T0) as batch:
        assert batch.free == [sub.id] and batch.sent == {sub.id: set()}
        batch.record(
            subs.QueuedDigest(
                sub.id, period, (PAPER.id,), "digest:1:x", "ada@example.org", b"Subject: x\r\n\r\nx"
            )
        )
    with subs.digest_batch(store, {sub.id: period}, now=T0) as batch:
        assert batch.free == []  # done for this period
    with subs.digest_batch(store, {sub.id: "daily:2026-03-03"}, now=T0) as batch:
        assert batch.free == [sub.id] and batch.sent == {sub.id: {PAPER.id}}
        batch.record(subs.QueuedDigest(sub.id, "daily:2026-03-03", ()))  # nothing new: nothing queued
    assert subs.sent_paper_ids(store, sub.id) == {PAPER.id}
    assert subs.digest_history(store, sub.id) == [
        (period, "queued", "digest:1:x"),
        ("daily:2026-03-03", "empty", None),
    ]
    assert outbox_store.status_of(store, "digest:1:x") == "pending"
    assert subs.get_subscriber(store, sub.id).last_digest_period == "daily:2026-03-03"
    # A batch that raises writes nothing.
    with pytest.raises(RuntimeError), subs.digest_batch(store, {sub.id: "daily:2026-03-04"}, now=T0) as batch:
        batch.record(subs.QueuedDigest(sub.id, "daily:2026-03-04", ()))
        raise RuntimeError("killed")
    assert subs.get_subscriber(store, sub.id).last_digest_period == "daily:2026-03-03"


def test_recent_mails_count_only_subscription_mail(store: Store):
    def queue(kind: str, to: str, at: datetime) -> None:
        msg = compose(sender="paperwire <p@paperwire.test>", to=to, subject="s", text="t")
        enqueue(store, msg, key=f"{kind}:{to}:{at.timestamp()}", kind=kind, now=at)

    queue("subscribe-confirm", "ada@example.org", T0)
    queue("subscribe-already", "ada@example.org", T0 + timedelta(hours=1))
    queue("signin", "ada@example.org", T0 + timedelta(hours=2))
    queue("subscribe-confirm", "bob@example.org", T0)
    assert subs.recent_mails(store, "ada@example.org", since=T0 - timedelta(seconds=1)) == [
        T0,
        T0 + timedelta(hours=1),
    ]
    assert len(subs.recent_mails(store, "ada@example.org", since=T0)) == 1


# -- tokens and headers ---------------------------------------------------------------------------------


@pytest.fixture
def settings(env, monkeypatch):
    monkeypatch.setenv("PAPERWIRE_SECRET_KEY", SECRET)
    monkeypatch.setenv("PAPERWIRE_BASE_URL", "https://papers.example.org/")
    return get_settings()


def test_tokens_are_purpose_bound_expire_and_can_be_revoked(settings, sqlite_store):
    sub = subs.subscribe(sqlite_store, "ada@example.org", now=T0)
    token = make_confirm_token(settings, sub, T0)
    assert read_confirm_token(settings, token, now=T0 + timedelta(days=6)) == (sub.id, sub.email, T0)
    with pytest.raises(SubscriptionRejected, match="expired"):
        read_confirm_token(settings, token, now=T0 + timedelta(days=7, seconds=1))
    body, mac = token.split(".")
    for bad in (f"{body}x.{mac}", f"{body}.{mac[:-2]}", "", "nonsense"):
        with pytest.raises(SubscriptionRejected, match="not valid"):
            read_confirm_token(settings, bad, now=T0)
    forged = sign_token(b"another key", PURPOSE_CONFIRM, {"s": sub.id, "e": sub.email, "t": 1})
    with pytest.raises(SubscriptionRejected, match="not valid"):
        read_confirm_token(settings, forged, now=T0)

    prefs = make_link_token(settings, PURPOSE_PREFERENCES, sub)
    assert subscriber_from_token(sqlite_store, settings, PURPOSE_PREFERENCES, prefs).id == sub.id
    with pytest.raises(SubscriptionRejected):  # a preferences link does not unsubscribe, nor the reverse
        subscriber_from_token(sqlite_store, settings, PURPOSE_UNSUBSCRIBE, prefs)
    with pytest.raises(SubscriptionRejected):
        subscriber_from_token(sqlite_store, settings, PURPOSE_PREFERENCES, token)
    subs.revoke_links(sqlite_store, sub.id)
    with pytest.raises(SubscriptionRejected, match="no longer valid"):
        subscriber_from_token(sqlite_store, settings, PURPOSE_PREFERENCES, prefs)


def test_unsubscribe_headers(settings, sqlite_store, monkeypatch):
    sub = subs.subscribe(sqlite_store, "ada@example.org", now=T0)
    headers = unsubscribe_headers(settings, sub)
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [link] = re.findall(r"<([^>]+)>", headers["List-Unsubscribe"])
    assert link.startswith("https://papers.example.org/unsubscribe?token=")
    token = parse_qs(urlsplit(link).query)["token"][0]
    assert subscriber_from_token(sqlite_store, settings, PURPOSE_UNSUBSCRIBE, token).id == sub.id
    monkeypatch.setenv("PAPERWIRE_UNSUBSCRIBE_MAILTO", "unsubscribe@papers.example.org")
    both = unsubscribe_headers(get_settings(), sub, base_url="https://other.example")
    https, mailto = re.findall(r"<([^>]+)>", both["List-Unsubscribe"])
    assert https.startswith("https://other.example/unsubscribe?token=")
    assert mailto.startswith("mailto:unsubscribe@papers.example.org?subject=unsubscribe")
    msg = compose(sender="p <p@papers.example.org>", to=sub.email, subject="Digest", text="x", headers=both)
    assert msg["List-Unsubscribe"] == both["List-Unsubscribe"]  # the email package accepts the values


def test_preferences_are_validated(sqlite_store):
    sqlite_store.apply([PAPER])
    good = {
        "frequency": "weekly",
        "hour": "7",
        "timezone": "America/New_York",
        "size": "20",
        "weekends": "1",
        "categories": "cs.CL, cs.*  math-ph q-bio.NC",
        "authors": "Grace Hopper\n\n Ada  Lovelace ",
        "queries": 'transformers AND "speech recognition"',
        "likes": "arXiv:2403.00001v2",
    }
    prefs, errors = parse_preferences(sqlite_store, good)
    assert errors == {}
    assert (prefs.frequency, prefs.hour, prefs.timezone, prefs.size, prefs.weekends, prefs.empty_note) == (
        "weekly",
        7,
        "America/New_York",
        20,
        True,
        False,
    )
    assert [t.value for t in prefs.topics if t.kind == "category"] == ["cs.CL", "cs.*", "math-ph", "q-bio.NC"]
    assert [t.value for t in prefs.topics if t.kind == "author"] == ["Grace Hopper", "Ada Lovelace"]
    assert [t.value for t in prefs.topics if t.kind == "like"] == ["2403.00001"]
    bad = {
        "frequency": "hourly",
        "hour": "24",
        "timezone": "Mars/Olympus",
        "size": "51",
        "categories": "cs.CL; DROP TABLE",
        "likes": "2403.99999 not-an-id",
    }
    prefs, errors = parse_preferences(sqlite_store, bad)
    assert prefs is None
    assert set(errors) == {"frequency", "hour", "timezone", "size", "categories", "likes"}
    assert "2403.99999" in errors["likes"] and "not-an-id" in errors["likes"]
    for tz in ("../etc/passwd", "", "/usr/share/zoneinfo/UTC"):
        assert "timezone" in parse_preferences(sqlite_store, {**good, "timezone": tz})[1]


# -- the web: a real server, a real SMTP server ---------------------------------------------------------


def _env(data: Path, smtp: SmtpServer, **extra: str) -> dict[str, str]:
    return site_env(
        data,
        PAPERWIRE_SECRET_KEY=SECRET,
        PAPERWIRE_MAIL_FROM="paperwire <digest@paperwire.test>",
        PAPERWIRE_SMTP_URL=smtp.url,
        **extra,
    )


def _start(data: Path, smtp: SmtpServer, **extra: str) -> LiveServer:
    env = _env(data, smtp, **extra)
    store = Store.open(env["PAPERWIRE_DATABASE_URL"])
    store.apply([PAPER])
    store.close()
    return start_server(env)


@pytest.fixture(scope="module")
def site(tmp_path_factory, smtp) -> Iterator[LiveServer]:
    server = _start(tmp_path_factory.mktemp("subscriptions-site"), smtp, PAPERWIRE_SUBSCRIBE_IP_LIMIT="1000")
    yield server
    server.stop()


def client(site: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=site.url, timeout=30, follow_redirects=False)


def form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]


def wait_for_mail(smtp: SmtpServer, address: str, count: int = 1, timeout: float = 15) -> list[EmailMessage]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = smtp.handler.to(address)
        if len(got) >= count:
            return [r.message for r in got]
        time.sleep(0.05)
    raise AssertionError(
        f"{count} message(s) to {address} did not arrive; got {len(smtp.handler.to(address))}"
    )


def links_in(message: EmailMessage) -> dict[str, str]:
    text = message.get_body(("plain",)).get_content()
    return {
        m[1]: m[0]
        for m in re.finditer(r"https?://\S+?/(subscribe/confirm|preferences|unsubscribe)\?token=\S+", text)
    }


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def subscribe(c: httpx.Client, address: str) -> httpx.Response:
    page = c.get("/")
    return c.post("/subscribe", data={"email": address, "csrf_token": form_token(page.text)})


def test_subscribe_confirm_preferences_unsubscribe(site, smtp, db):
    c = client(site)
    home = c.get("/")
    assert 'action="/subscribe"' in home.text
    r = c.post("/subscribe", data={"email": "Ada@Example.ORG", "csrf_token": form_token(home.text)})
    assert r.status_code == 200 and "Check your inbox" in r.text and "ada@example.org" in r.text
    assert r.headers["cache-control"] == "no-store"

    [msg] = wait_for_mail(smtp, "ada@example.org")
    assert smtp.handler.to("ada@example.org")[0].sender == "digest@paperwire.test"
    assert msg["From"] == "paperwire <digest@paperwire.test>" and msg["To"] == "ada@example.org"
    assert msg["Subject"] == "Confirm your paperwire digest subscription"
    assert msg["Message-ID"].endswith("@paperwire.test>")
    assert abs(parsedate_to_datetime(msg["Date"]) - datetime.now(UTC)) < timedelta(minutes=5)
    assert msg.get_content_type() == "multipart/alternative"
    links = links_in(msg)
    confirm, prefs = links["subscribe/confirm"], links["preferences"]
    assert confirm.startswith(site.url + "/subscribe/confirm?token=")  # absolute
    assert prefs.startswith(site.url + "/preferences?token=")
    html = msg.get_body(("html",)).get_content()
    assert f'href="{confirm}"' in html and f'href="{prefs}"' in html
    assert subs.get_subscriber_by_email(db, "ada@example.org").status == "pending"

    # Opening the link (a mail scanner, twice) shows a button and changes nothing.
    for _ in range(2):
        page = c.get(path_of(confirm))
        assert page.status_code == 200 and "Confirm my subscription" in page.text
    assert subs.get_subscriber_by_email(db, "ada@example.org").status == "pending"
    # The POST needs this browser's CSRF token.
    assert c.post("/subscribe/confirm", data={"token": token_of(confirm)}).status_code == 403
    r = c.post("/subscribe/confirm", data={"token": token_of(confirm), "csrf_token": form_token(page.text)})
    assert r.status_code == 200 and "You are subscribed" in r.text
    assert 'href="' + site.url + "/preferences?token=" in r.text
    sub = subs.get_subscriber_by_email(db, "ada@example.org")
    assert sub.status == "active" and sub.confirmed_at is not None

    # Preferences through the signed link: no password, no session.
    p = httpx.Client(base_url=site.url, timeout=30)
    page = p.get(path_of(prefs))
    assert page.status_code == 200 and "Digest preferences" in page.text and "ada@example.org" in page.text
    form = {
        "token": token_of(prefs),
        "csrf_token": form_token(page.text),
        "frequency": "weekly",
        "hour": "18",
        "timezone": "Europe/Berlin",
        "size": "25",
        "weekends": "1",
        "empty_note": "1",
        "categories": "cs.CL cs.*",
        "authors": "Grace Hopper",
        "queries": "speech recognition",
        "likes": "2403.00001",
    }
    assert (
        p.post("/preferences", data={k: v for k, v in form.items() if k != "csrf_token"}).status_code == 403
    )
    r = p.post("/preferences", data=form)
    assert r.status_code == 200 and "Your preferences are saved" in r.text
    sub = subs.get_subscriber(db, sub.id)
    assert (sub.frequency, sub.hour, sub.timezone, sub.size, sub.weekends, sub.empty_note) == (
        "weekly",
        18,
        "Europe/Berlin",
        25,
        True,
        True,
    )
    assert set(sub.topics) == {
        Topic("category", "cs.CL"),
        Topic("category", "cs.*"),
        Topic("author", "Grace Hopper"),
        Topic("query", "speech recognition"),
        Topic("like", "2403.00001"),
    }
    # Bad input: the form again with messages, nothing saved.
    bad = {**form, "hour": "25", "timezone": "Nowhere/Land", "size": "3", "likes": "2403.99999"}
    r = p.post("/preferences", data=bad)
    assert r.status_code == 400 and "Nothing was saved" in r.text
    assert "not a time zone we know" in r.text and "Not in this catalogue: 2403.99999" in r.text
    assert "Nowhere/Land" in r.text  # the form keeps what was typed
    assert subs.get_subscriber(db, sub.id) == sub
    r = p.post("/preferences", data={**form, "token": token_of(prefs)[:-3] + "AAA"})
    assert r.status_code == 400 and "not valid" in r.text

    # One-click unsubscribe as a mail provider does it: a plain POST, no cookies, no CSRF token.
    unsubscribe_link = f"{site.url}/unsubscribe?token=" + make_link_token(
        get_settings_for(site), PURPOSE_UNSUBSCRIBE, sub
    )
    page = httpx.get(unsubscribe_link)
    assert page.status_code == 200 and "Unsubscribe ada@example.org" in page.text
    assert subs.get_subscriber(db, sub.id).status == "active"  # the GET changed nothing
    r = httpx.post(unsubscribe_link, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200 and "You are unsubscribed" in r.text
    sub = subs.get_subscriber(db, sub.id)
    assert sub.status == "unsubscribed" and sub.unsubscribed_at is not None
    assert httpx.post(unsubscribe_link, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # again
    # The page's button posts the token in the form body.
    assert (
        httpx.post(f"{site.url}/unsubscribe", data={"token": token_of(unsubscribe_link)}).status_code == 200
    )
    assert httpx.post(f"{site.url}/unsubscribe", data={"token": "forged.token"}).status_code == 400
    assert len(smtp.handler.to("ada@example.org")) == 1  # nothing but the confirmation was ever sent


def get_settings_for(site: LiveServer):  # noqa: ANN201
    """The settings the live server runs with (its key signs the links a test makes itself)."""
    import os

    old = dict(os.environ)
    try:
        os.environ.update(site.env)
        return get_settings()
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_repeated_sign_ups_send_nothing_more(site, smtp, db):
    c = client(site)
    for _ in range(3):
        r = subscribe(c, "bob@example.org")
        assert r.status_code == 200 and "Check your inbox" in r.text
    wait_for_mail(smtp, "bob@example.org")
    [msg] = wait_for_mail(smtp, "bob@example.org")  # one confirmation, not three
    page = c.get(path_of(links_in(msg)["subscribe/confirm"]))
    c.post(
        "/subscribe/confirm",
        data={"token": token_of(links_in(msg)["subscribe/confirm"]), "csrf_token": form_token(page.text)},
    )
    assert subs.get_subscriber_by_email(db, "bob@example.org").status == "active"
    # Subscribed already: the same page (nothing revealed), no new mail within the resend period.
    r = subscribe(c, "bob@example.org")
    assert r.status_code == 200 and "Check your inbox" in r.text
    assert len(smtp.handler.to("bob@example.org")) == 1


def test_subscribe_needs_csrf_and_a_valid_address(site, smtp, db):
    c = client(site)
    c.get("/")
    r = c.post("/subscribe", data={"email": "carol@example.org"})
    assert r.status_code == 403
    assert subs.get_subscriber_by_email(db, "carol@example.org") is None
    r = subscribe(c, "not an address")
    assert r.status_code == 400 and "does not look like an e-mail address" in r.text
    outbox_store.suppress(db, "dead@example.org", reason="550 no such user", now=datetime.now(UTC))
    r = subscribe(c, "dead@example.org")
    assert r.status_code == 400 and "bounced permanently" in r.text
    assert subs.get_subscriber_by_email(db, "dead@example.org") is None


def test_invalid_and_expired_links(site, db):
    settings = get_settings_for(site)
    sub = subs.subscribe(db, "dora@example.org", now=datetime.now(UTC))
    old = make_confirm_token(settings, sub, datetime.now(UTC) - timedelta(days=8))
    r = httpx.get(f"{site.url}/subscribe/confirm", params={"token": old})
    assert r.status_code == 400 and "expired" in r.text
    good = make_confirm_token(settings, sub, datetime.now(UTC))
    for bad in (good[:-4], good.replace(".", "x.", 1), ""):
        r = httpx.get(f"{site.url}/subscribe/confirm", params={"token": bad})
        assert r.status_code == 400 and "not valid" in r.text
    prefs = make_link_token(settings, PURPOSE_PREFERENCES, sub)
    assert httpx.get(f"{site.url}/preferences", params={"token": prefs}).status_code == 200
    subs.revoke_links(db, sub.id)
    r = httpx.get(f"{site.url}/preferences", params={"token": prefs})
    assert r.status_code == 400 and "no longer valid" in r.text
    assert httpx.get(f"{site.url}/unsubscribe", params={"token": prefs}).status_code == 400  # wrong purpose
    assert subs.get_subscriber(db, sub.id).status == "pending"


def test_json_api(site, smtp, db):
    r = httpx.post(f"{site.url}/api/v1/subscriptions", json={"email": "Erin@Example.org"})
    assert r.status_code == 202, r.text
    assert r.json()["email"] == "erin@example.org" and "inbox" in r.json()["message"]
    [msg] = wait_for_mail(smtp, "erin@example.org")
    assert "subscribe/confirm" in links_in(msg)
    assert subs.get_subscriber_by_email(db, "erin@example.org").status == "pending"
    r = httpx.post(f"{site.url}/api/v1/subscriptions", json={"email": "nope"})
    assert r.status_code == 400 and "error" in r.json()
    schema = httpx.get(f"{site.url}/openapi.json").json()
    assert "post" in schema["paths"]["/api/v1/subscriptions"]


def test_signed_in_user_subscribes_with_one_click(site, smtp, db):
    c = client(site)
    home = c.get("/")
    c.post("/signin", data={"email": "fay@example.org", "csrf_token": form_token(home.text)})
    [msg] = wait_for_mail(smtp, "fay@example.org")
    link = re.search(r"(https?://\S+/signin/confirm\?token=\S+)", msg.get_body(("plain",)).get_content())[1]
    page = c.get(path_of(link))
    assert (
        c.post(
            "/signin/confirm", data={"token": token_of(link), "csrf_token": form_token(page.text)}
        ).status_code
        == 303
    )
    home = c.get("/")
    assert "Subscribe as fay@example.org" in home.text
    r = c.post("/subscribe", data={"email": "fay@example.org", "csrf_token": form_token(home.text)})
    assert r.status_code == 200 and "You are subscribed" in r.text and "/preferences?token=" in r.text
    sub = subs.get_subscriber_by_email(db, "fay@example.org")
    assert sub.status == "active" and sub.user_id is not None
    assert len(smtp.handler.to("fay@example.org")) == 1  # only the sign-in link: no confirmation needed


def test_rate_limits(tmp_path, smtp):
    server = _start(
        tmp_path / "data",
        smtp,
        PAPERWIRE_SUBSCRIBE_RESEND_MINUTES="0",
        PAPERWIRE_SUBSCRIBE_EMAIL_LIMIT="2",
        PAPERWIRE_SUBSCRIBE_IP_LIMIT="4",
    )
    try:
        c = client(server)
        assert subscribe(c, "gus@example.org").status_code == 200
        assert subscribe(c, "gus@example.org").status_code == 200
        r = subscribe(c, "gus@example.org")  # a third mail to the address in a day: refused
        assert r.status_code == 429 and "already sent 2 messages" in r.text
        assert int(r.headers["retry-after"]) > 3600
        wait_for_mail(smtp, "gus@example.org", 2)
        assert subscribe(c, "hal@example.org").status_code == 200
        r = c.post(f"{server.url}/api/v1/subscriptions", json={"email": "ivy@example.org"})
        assert r.status_code == 429 and "Too many subscription requests" in r.json()["error"]
        assert 0 < int(r.headers["retry-after"]) <= 3600
        assert len(smtp.handler.to("gus@example.org")) == 2
    finally:
        server.stop()
