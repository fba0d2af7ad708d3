"""Accounts: sign-in by e-mailed link, sessions, CSRF, API tokens, deletion, admins, rate limits.

The store functions run on SQLite and a real PostgreSQL; the web flow runs against a real
`paperwire serve` that sends its mail to a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import base64
import email
import email.policy
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from sqlalchemy import select

from paperwire.models import Author, Paper
from paperwire.store import Store, accounts
from paperwire.store import outbox as outbox_store
from paperwire.store.accounts import LinkRejected
from paperwire.store.schema import login_links, outbox, papers, sessions, users
from paperwire.web.auth import PURPOSE_LOGIN, BadSignature, safe_next, sign_token, unsign_token
from tests.live_server import ROOT, LiveServer, paperwire, site_env, start_server
from tests.smtp_server import SmtpServer, free_port

SECRET = "test-secret-key-for-accounts"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PAPER = Paper(
    id="2403.00001",
    title="Votes that must be counted",
    abstract="A paper to vote for.",
    authors=[Author("Grace Hopper")],
    categories=["cs.LG"],
    published=datetime(2026, 3, 1, tzinfo=UTC),
)


# -- the store ------------------------------------------------------------------------------------------


def test_link_is_single_use_and_creates_the_user_once(store):
    accounts.add_login_link(store, "n1", "ada@example.org", now=T0)
    accounts.check_login_link(store, "n1", "ada@example.org")  # a read: may be called any number of times
    accounts.check_login_link(store, "n1", "ada@example.org")
    with pytest.raises(LinkRejected, match="not valid"):
        accounts.check_login_link(store, "n1", "eve@example.org")  # a nonce belongs to one address
    assert accounts.get_user_by_email(store, "ada@example.org") is None  # no account before the link is used
    user = accounts.use_login_link(store, "n1", "ada@example.org", now=T0 + timedelta(minutes=1))
    assert user.email == "ada@example.org" and user.last_login_at == T0 + timedelta(minutes=1)
    with pytest.raises(LinkRejected, match="already been used"):
        accounts.use_login_link(store, "n1", "ada@example.org", now=T0)
    with pytest.raises(LinkRejected, match="already been used"):
        accounts.check_login_link(store, "n1", "ada@example.org")
    with pytest.raises(LinkRejected, match="not valid"):
        accounts.use_login_link(store, "nope", "ada@example.org", now=T0)
    accounts.add_login_link(store, "n2", "ada@example.org", now=T0 + timedelta(minutes=2))
    again = accounts.use_login_link(store, "n2", "ada@example.org", now=T0 + timedelta(minutes=3))
    assert again.id == user.id  # the second sign-in finds the same account
    assert accounts.recent_links(store, "ada@example.org", since=T0 - timedelta(seconds=1)) == [
        T0,
        T0 + timedelta(minutes=2),
    ]
    assert accounts.recent_links(store, "ada@example.org", since=T0) == [T0 + timedelta(minutes=2)]


def test_sessions_expire_and_are_deleted(store):
    user = accounts.ensure_user(store, "ada@example.org", now=T0)
    accounts.create_session(store, "h1", user.id, now=T0, expires_at=T0 + timedelta(days=30))
    accounts.create_session(store, "h2", user.id, now=T0, expires_at=T0 + timedelta(hours=1))
    assert accounts.session_user(store, "h1", now=T0).id == user.id
    assert accounts.session_user(store, "h2", now=T0 + timedelta(hours=2)) is None  # expired
    assert accounts.session_user(store, "unknown", now=T0) is None
    accounts.delete_session(store, "h1")
    assert accounts.session_user(store, "h1", now=T0) is None
    accounts.add_login_link(store, "old", "ada@example.org", now=T0)
    assert accounts.purge_expired(store, now=T0 + timedelta(days=2), link_age=timedelta(days=1)) == (1, 1)


def test_api_tokens(store):
    ada = accounts.ensure_user(store, "ada@example.org", now=T0)
    eve = accounts.ensure_user(store, "eve@example.org", now=T0)
    token = accounts.create_api_token(store, ada.id, name="script", token_hash="th1", prefix="pw_abc", now=T0)
    assert accounts.token_user(store, "th1", now=T0 + timedelta(minutes=5)).id == ada.id
    assert accounts.token_user(store, "other", now=T0) is None
    [listed] = accounts.list_api_tokens(store, ada.id)
    assert (listed.name, listed.prefix, listed.last_used_at) == (
        "script",
        "pw_abc",
        T0 + timedelta(minutes=5),
    )
    # Used again within the minute: last_used_at is not rewritten on every request.
    accounts.token_user(store, "th1", now=T0 + timedelta(minutes=5, seconds=30))
    assert accounts.list_api_tokens(store, ada.id)[0].last_used_at == T0 + timedelta(minutes=5)
    assert not accounts.revoke_api_token(store, eve.id, token.id)  # not hers
    assert accounts.token_user(store, "th1", now=T0) is not None
    assert accounts.revoke_api_token(store, ada.id, token.id)
    assert accounts.token_user(store, "th1", now=T0) is None
    assert accounts.count_api_tokens(store, ada.id) == 0


def test_admins_are_granted_and_revoked(store):
    assert accounts.set_admin(store, "nobody@example.org", False, now=T0) is None
    boss = accounts.set_admin(store, "Boss@Example.org", True, now=T0)  # created on the way
    assert boss.email == "boss@example.org" and boss.is_admin
    assert [u.email for u in accounts.list_admins(store)] == ["boss@example.org"]
    assert accounts.get_user(store, boss.id).is_admin
    assert not accounts.set_admin(store, "boss@example.org", False, now=T0).is_admin
    assert accounts.list_admins(store) == []


def test_deleting_a_user_removes_votes_with_the_counts(store):
    votes = pytest.importorskip("paperwire.store.votes")
    store.apply([PAPER])
    ada = accounts.ensure_user(store, "ada@example.org", now=T0)
    bob = accounts.ensure_user(store, "bob@example.org", now=T0)
    votes.upvote(store, ada.id, PAPER.id, T0)
    votes.upvote(store, bob.id, PAPER.id, T0)
    accounts.create_session(store, "s", ada.id, now=T0, expires_at=T0 + timedelta(days=1))
    accounts.create_api_token(store, ada.id, name="t", token_hash="th", prefix="pw_x", now=T0)
    accounts.add_login_link(store, "n", "ada@example.org", now=T0)
    assert store.get(PAPER.id).upvotes == 2
    assert accounts.delete_user(store, ada.id)
    assert not accounts.delete_user(store, ada.id)
    assert store.get(PAPER.id).upvotes == 1
    assert accounts.get_user(store, ada.id) is None
    assert accounts.session_user(store, "s", now=T0) is None
    assert accounts.token_user(store, "th", now=T0) is None
    assert accounts.recent_links(store, "ada@example.org", since=T0 - timedelta(days=1)) == []
    assert accounts.get_user(store, bob.id) is not None


# -- signed tokens and redirects ------------------------------------------------------------------------


def test_signed_tokens_refuse_tampering_and_other_purposes():
    key = b"k" * 32
    token = sign_token(key, PURPOSE_LOGIN, {"e": "ada@example.org", "n": "x", "t": 1})
    assert unsign_token(key, PURPOSE_LOGIN, token) == {"e": "ada@example.org", "n": "x", "t": 1}
    body, mac = token.split(".")
    forged = sign_token(b"other key", PURPOSE_LOGIN, {"e": "eve@example.org", "n": "x", "t": 1}).split(".")[0]
    for bad in (
        f"{forged}.{mac}",  # another payload with this signature
        f"{body}.{mac[:-2]}",  # signature cut short
        f"{body}x.{mac}",
        body,
        "",
        "a.b.c",
    ):
        with pytest.raises(BadSignature):
            unsign_token(key, PURPOSE_LOGIN, bad)
    # base64's last character has two spare bits: every other spelling of it must be refused too
    # (a decoder would read four of the 64 letters as the same MAC).
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for letter in alphabet.replace(mac[-1], ""):
        with pytest.raises(BadSignature):
            unsign_token(key, PURPOSE_LOGIN, f"{body}.{mac[:-1]}{letter}")
    with pytest.raises(BadSignature):
        unsign_token(key, "csrf", token)  # signed for one purpose, refused for another
    with pytest.raises(BadSignature):
        unsign_token(b"other key", PURPOSE_LOGIN, token)


def test_only_local_paths_are_followed_after_sign_in():
    assert safe_next("/papers/2401.00001?x=1") == "/papers/2401.00001?x=1"
    for bad in ("//evil.example/", "/\\evil.example", "https://evil.example/", "evil", "", None, "/a\r\nb"):
        assert safe_next(bad) is None


# -- the web: a real server, a real SMTP server ---------------------------------------------------------


def _env(data: Path, **extra: str) -> dict[str, str]:
    return site_env(data, PAPERWIRE_SECRET_KEY=SECRET, **extra)


@pytest.fixture(scope="module")
def site(tmp_path_factory, smtp) -> Iterator[LiveServer]:
    """One server for the flows; each test uses its own addresses, so the per-address limits of one
    test never touch another (the per-client limit is high here and tested on its own server)."""
    data = tmp_path_factory.mktemp("accounts-site")
    env = _env(data, PAPERWIRE_SMTP_URL=smtp.url, PAPERWIRE_SIGNIN_IP_LIMIT="1000")
    store = Store.open(env["PAPERWIRE_DATABASE_URL"])
    store.apply([PAPER])
    store.close()
    server = start_server(env)
    yield server
    server.stop()


def client(site: LiveServer) -> httpx.Client:
    """A browser-like client: keeps its cookies, does not follow redirects (tests look at them)."""
    return httpx.Client(base_url=site.url, timeout=30, follow_redirects=False)


def form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]


def csrf(c: httpx.Client, path: str = "/signin") -> str:
    r = c.get(path)
    assert r.status_code == 200, r.text
    return form_token(r.text)


def wait_for_mail(smtp: SmtpServer, address: str, count: int = 1, timeout: float = 15) -> list[EmailMessage]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = smtp.handler.to(address)
        if len(got) >= count:
            return [r.message for r in got]
        time.sleep(0.05)
    raise AssertionError(
        f"{count} message(s) to {address} did not arrive; got {len(smtp.handler.to(address))}"
    )


def link_in(message: EmailMessage) -> str:
    text = message.get_body(("plain",)).get_content()
    return re.search(r"(https?://\S+/signin/confirm\?token=\S+)", text)[1]


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def request_link(c: httpx.Client, address: str, **extra: str) -> httpx.Response:
    return c.post("/signin", data={"email": address, "csrf_token": csrf(c), **extra})


def sign_in(c: httpx.Client, smtp: SmtpServer, address: str) -> None:
    before = len(smtp.handler.to(address))
    assert request_link(c, address).status_code == 200
    link = link_in(wait_for_mail(smtp, address, before + 1)[-1])
    page = c.get(path_of(link))
    r = c.post("/signin/confirm", data={"token": token_of(link), "csrf_token": form_token(page.text)})
    assert r.status_code == 303, r.text


def me(c: httpx.Client, **headers: str) -> httpx.Response:
    return c.get("/api/v1/me", headers=headers)


def test_sign_in_by_emailed_link(site, smtp, db):
    c = client(site)
    home = c.get("/")
    assert 'href="/signin"' in home.text  # the header offers to sign in
    assert "paperwire_csrf=" in home.headers["set-cookie"]  # forms work from the first page on

    r = request_link(c, "Ada.Lovelace@Example.ORG")
    assert r.status_code == 200
    assert "Check your inbox" in r.text and "ada.lovelace@example.org" in r.text

    [msg] = wait_for_mail(smtp, "ada.lovelace@example.org")
    [received] = smtp.handler.to("ada.lovelace@example.org")
    assert received.sender == "signin@paperwire.test"
    assert msg["To"] == "ada.lovelace@example.org"
    assert msg["From"] == "paperwire <signin@paperwire.test>"
    assert msg["Subject"] == "Sign in to paperwire"
    assert msg["Message-ID"].endswith("@paperwire.test>") and msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    link = link_in(msg)
    assert link.startswith(site.url + "/signin/confirm?token=")  # absolute, from the request's address
    assert "ada.lovelace@example.org" in text and "15 minutes" in text
    assert f'href="{link}"' in html  # the same link in the HTML part

    # Opening the link (or a mail scanner fetching it, twice) signs nobody in and creates nobody.
    for _ in range(2):
        page = c.get(path_of(link))
        assert page.status_code == 200
        assert "Sign in as ada.lovelace@example.org" in page.text
        assert "paperwire_session" not in page.headers.get("set-cookie", "")
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
    assert accounts.get_user_by_email(db, "ada.lovelace@example.org") is None
    assert me(c).status_code == 401

    r = c.post("/signin/confirm", data={"token": token_of(link), "csrf_token": form_token(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/account"
    cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith("paperwire_session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/", f"max-age={30 * 86400}"} <= flags
    assert "secure" not in flags  # plain http here; see test_https_site_* for Secure
    session_id = cookie.split(";")[0].split("=", 1)[1]
    with db.engine.connect() as conn:  # only the hash of the id is stored
        stored = conn.execute(select(sessions.c.id_hash)).scalars().all()
    assert session_id not in stored and len(stored[0]) == 64

    account = c.get("/account")
    assert account.status_code == 200
    assert '<dd class="account-email">ada.lovelace@example.org</dd>' in account.text
    assert 'href="/account"' in c.get("/").text and "ada.lovelace@example.org" in c.get("/").text
    assert me(c).json() == {"email": "ada.lovelace@example.org", "is_admin": False}
    user = accounts.get_user_by_email(db, "ada.lovelace@example.org")
    assert user is not None and user.last_login_at is not None


def test_a_used_link_cannot_sign_in_again(site, smtp):
    c = client(site)
    request_link(c, "reuse@example.org")
    link = link_in(wait_for_mail(smtp, "reuse@example.org")[0])
    token = token_of(link)
    assert c.post("/signin/confirm", data={"token": token, "csrf_token": csrf(c)}).status_code == 303

    other = client(site)  # someone who got hold of the link afterwards
    r = other.get(path_of(link))
    assert r.status_code == 400 and "already been used" in r.text
    r = other.post("/signin/confirm", data={"token": token, "csrf_token": csrf(other)})
    assert r.status_code == 400 and "already been used" in r.text
    assert "paperwire_session" not in r.headers.get("set-cookie", "")
    assert me(other).status_code == 401


def test_an_expired_link_is_refused(site, smtp):
    c = client(site)
    request_link(c, "late@example.org")
    token = token_of(link_in(wait_for_mail(smtp, "late@example.org")[0]))
    payload = unsign_token(SECRET.encode(), PURPOSE_LOGIN, token)
    # The same link (its nonce is real and unused), issued 16 minutes ago, signed with the site's key.
    payload["t"] -= 16 * 60
    old = sign_token(SECRET.encode(), PURPOSE_LOGIN, payload)
    r = c.get("/signin/confirm", params={"token": old})
    assert r.status_code == 400 and "expired" in r.text and "15 minutes" in r.text
    r = c.post("/signin/confirm", data={"token": old, "csrf_token": csrf(c)})
    assert r.status_code == 400 and "expired" in r.text
    assert me(c).status_code == 401
    # The link itself, within its 15 minutes, still works: only the age was refused.
    assert c.post("/signin/confirm", data={"token": token, "csrf_token": csrf(c)}).status_code == 303


def test_a_tampered_link_is_refused(site, smtp, db):
    c = client(site)
    request_link(c, "victim@example.org")
    token = token_of(link_in(wait_for_mail(smtp, "victim@example.org")[0]))
    body, mac = token.split(".")
    payload = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["e"] = "attacker@example.org"  # the same nonce and signature, another address
    forged = base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for bad in (f"{forged}.{mac}", f"{body}.{flipped}", body, token[:-5], "garbage", ""):
        assert c.get("/signin/confirm", params={"token": bad}).status_code == 400
        r = c.post("/signin/confirm", data={"token": bad, "csrf_token": csrf(c)})
        assert r.status_code == 400 and "not valid" in r.text
    assert me(c).status_code == 401
    assert accounts.get_user_by_email(db, "attacker@example.org") is None
    assert accounts.get_user_by_email(db, "victim@example.org") is None


def test_forms_without_the_right_csrf_token_are_refused(site, smtp):
    c = client(site)
    token = csrf(c)
    r = c.post("/signin", data={"email": "csrf@example.org"})  # no token
    assert r.status_code == 403 and "security token" in r.text
    r = c.post("/signin", data={"email": "csrf@example.org", "csrf_token": token + "x"})
    assert r.status_code == 403 and "does not match" in r.text

    attacker = client(site)  # a token from another browser (what a hostile page could embed)
    r = c.post("/signin", data={"email": "csrf@example.org", "csrf_token": csrf(attacker)})
    assert r.status_code == 403
    naked = httpx.post(site.url + "/signin", data={"email": "csrf@example.org", "csrf_token": token})
    assert naked.status_code == 403  # the token without this browser's cookie
    assert smtp.handler.to("csrf@example.org") == []  # nothing was sent

    # Signed in, every state-changing form needs the token too; a fetch() may send it as a header.
    sign_in(c, smtp, "csrf@example.org")
    assert c.post("/signout").status_code == 403
    assert c.post("/account/tokens", data={"name": "x"}).status_code == 403
    assert c.post("/account/delete", data={"confirm": "csrf@example.org"}).status_code == 403
    assert me(c).status_code == 200  # still signed in, still there
    r = c.post("/account/tokens", data={"name": "from fetch"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 200 and "from fetch" in r.text
    r = c.post("/account/tokens", data={"name": "wrong"}, headers={"X-CSRF-Token": "nope"})
    assert r.status_code == 403
    assert c.post("/signout", data={"csrf_token": token}).status_code == 303
    assert me(c).status_code == 401


def test_sign_in_e_mails_are_limited_per_address(site, smtp):
    c = client(site)
    for _ in range(3):
        assert request_link(c, "flood@example.org").status_code == 200
    r = request_link(c, "FLOOD@example.org")
    assert r.status_code == 429
    retry = int(r.headers["retry-after"])
    assert 0 < retry <= 15 * 60
    assert "already sent 3 sign-in links to this address" in r.text
    assert re.search(r"try again in \d+ minutes?", r.text)
    time.sleep(1.5)  # the mail thread had every chance to send a fourth
    assert len(wait_for_mail(smtp, "flood@example.org", 3)) == 3
    assert request_link(c, "someone.else@example.org").status_code == 200  # other addresses are unaffected


def test_invalid_address_is_refused_politely(site):
    c = client(site)
    r = request_link(c, "not an address")
    assert r.status_code == 400 and "does not look like an e-mail address" in r.text
    assert 'value="not an address"' in r.text  # kept in the form, escaped
    r = request_link(c, '"><script>x</script>@example.org')
    assert r.status_code == 400 and "<script>x" not in r.text


def test_pages_that_need_an_account_send_visitors_to_sign_in_and_back(site, smtp):
    c = client(site)
    r = c.get("/account")
    assert r.status_code == 303 and r.headers["location"] == "/signin?next=/account"
    assert me(c).json() == {
        "error": "sign in required: send Authorization: Bearer <token> (create one on /account)"
    }
    page = c.get("/signin", params={"next": "/papers/week"})
    assert 'name="next" value="/papers/week"' in page.text
    c.post(
        "/signin",
        data={"email": "back@example.org", "next": "/papers/week", "csrf_token": form_token(page.text)},
    )
    token = token_of(link_in(wait_for_mail(smtp, "back@example.org")[0]))
    r = c.post("/signin/confirm", data={"token": token, "csrf_token": csrf(c)})
    assert r.status_code == 303 and r.headers["location"] == "/papers/week"

    c2 = client(site)
    c2.post(
        "/signin", data={"email": "evil-next@example.org", "next": "//evil.example/", "csrf_token": csrf(c2)}
    )
    token = token_of(link_in(wait_for_mail(smtp, "evil-next@example.org")[0]))
    r = c2.post("/signin/confirm", data={"token": token, "csrf_token": csrf(c2)})
    assert r.headers["location"] == "/account"  # another site is never a destination


def test_api_tokens_authenticate_the_json_api_until_revoked(site, smtp):
    c = client(site)
    sign_in(c, smtp, "scripts@example.org")
    token = csrf(c, "/account")
    r = c.post("/account/tokens", data={"name": "  my  reader ", "csrf_token": token})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    api_token = re.search(r'class="token-value"[^>]*value="(pw_[^"]+)"', r.text)[1]
    assert "my reader" in r.text and "shown only this once" in r.text

    account = c.get("/account").text
    assert api_token not in account  # shown once: afterwards only its prefix
    assert api_token[:10] + "…" in account and "never" in account

    bare = httpx.Client(base_url=site.url, timeout=30)  # no cookies: the token alone
    auth = {"Authorization": f"Bearer {api_token}"}
    assert me(bare, **auth).json() == {"email": "scripts@example.org", "is_admin": False}
    assert "never" not in c.get("/account").text.split("my reader")[1].split("</tr>")[0]  # last used: today
    r = me(bare, Authorization="Bearer pw_not-a-token")
    assert r.status_code == 401 and r.json() == {"error": "the API token is not valid (revoked, or mistyped)"}
    assert me(bare).status_code == 401

    # A bearer token needs no CSRF token (a browser never adds one cross-site).
    r = bare.post("/account/tokens", data={"name": "made by a script"}, headers=auth)
    assert r.status_code == 200 and "made by a script" in r.text

    # Tokens are listed newest first: the one named "my reader" is the last row.
    token_id = re.findall(r"/account/tokens/(\d+)/revoke", c.get("/account").text)[-1]
    r = c.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/account?revoked=1"
    assert "The token was revoked." in c.get("/account?revoked=1").text
    assert me(bare, **auth).status_code == 401
    assert c.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": token}).status_code == 404
    r = c.post("/account/tokens", data={"name": "", "csrf_token": token})
    assert r.status_code == 400 and "name of 1 to 100 characters" in r.text


def test_sign_out_ends_the_session_on_the_server(site, smtp):
    c = client(site)
    sign_in(c, smtp, "leaver@example.org")
    session_id = c.cookies["paperwire_session"]
    r = c.post("/signout", data={"csrf_token": csrf(c, "/account")})
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert 'paperwire_session=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    assert me(c).status_code == 401
    # A copy of the old cookie is worthless: the session row is gone.
    replay = httpx.Client(base_url=site.url, timeout=30, cookies={"paperwire_session": session_id})
    assert me(replay).status_code == 401


def test_deleting_the_account(site, smtp, db):
    votes = pytest.importorskip("paperwire.store.votes")
    c = client(site)
    sign_in(c, smtp, "goner@example.org")
    user = accounts.get_user_by_email(db, "goner@example.org")
    votes.upvote(db, user.id, PAPER.id, datetime.now(UTC))
    before = db.get(PAPER.id).upvotes
    token = csrf(c, "/account")
    api_token = re.search(
        r'value="(pw_[^"]+)"', c.post("/account/tokens", data={"name": "t", "csrf_token": token}).text
    )[1]
    session_id = c.cookies["paperwire_session"]

    r = c.post("/account/delete", data={"confirm": "someone@example.org", "csrf_token": token})
    assert r.status_code == 400 and "Type your e-mail address exactly" in r.text
    assert accounts.get_user(db, user.id) is not None

    r = c.post("/account/delete", data={"confirm": " Goner@Example.org ", "csrf_token": token})
    assert r.status_code == 200 and "Your account has been deleted" in r.text
    assert accounts.get_user(db, user.id) is None
    assert db.get(PAPER.id).upvotes == before - 1
    with db.engine.connect() as conn:
        assert conn.execute(select(sessions).where(sessions.c.user_id == user.id)).first() is None
        assert (
            conn.execute(select(login_links).where(login_links.c.email == "goner@example.org")).first()
            is None
        )
    replay = httpx.Client(base_url=site.url, timeout=30, cookies={"paperwire_session": session_id})
    assert me(replay).status_code == 401
    assert me(replay, Authorization=f"Bearer {api_token}").status_code == 401
    assert me(c).status_code == 401

    sign_in(c, smtp, "goner@example.org")  # the address can sign up again: a new, empty account
    again = accounts.get_user_by_email(db, "goner@example.org")
    # (SQLite may hand out the deleted row's id again: nothing of the old account refers to it any more.)
    assert again.created_at > user.created_at and accounts.list_api_tokens(db, again.id) == []


def test_admins_are_granted_on_the_command_line(site, smtp):
    env = site.env
    out = paperwire(env, "admin", "grant", "Boss@Example.org").stdout
    assert "boss@example.org is an administrator" in out
    assert "boss@example.org" in paperwire(env, "admin", "list").stdout
    c = client(site)
    sign_in(c, smtp, "boss@example.org")  # the account the grant created
    assert me(c).json() == {"email": "boss@example.org", "is_admin": True}
    assert "Administrator" in c.get("/account").text
    paperwire(env, "admin", "revoke", "boss@example.org")
    assert me(c).json()["is_admin"] is False
    proc = subprocess.run(
        [sys.executable, "-m", "paperwire.cli", "admin", "revoke", "nobody@example.org"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 1 and "no account for nobody@example.org" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "paperwire.cli", "admin", "grant", "not-an-address"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "not an e-mail address" in proc.stderr


def test_no_get_changes_anything(site, smtp, db):
    """Every GET route of the accounts feature, anonymous and signed in: no row changes (the outbox is
    left out: the mail thread may still be marking an earlier test's message sent)."""
    c = client(site)
    sign_in(c, smtp, "reader@example.org")

    def snapshot() -> tuple:
        with db.engine.connect() as conn:
            return tuple(conn.execute(select(t)).all() for t in (users, sessions, login_links, papers))

    before = snapshot()
    for path in (
        "/",
        "/signin",
        "/signin?next=/account",
        "/account",
        "/api/v1/me",
        "/signin/confirm?token=x",
    ):
        c.get(path)
        httpx.get(site.url + path)
    assert snapshot() == before


# -- a second server: https address, tight per-client limit, no SMTP server listening --------------------


@pytest.fixture(scope="module")
def https_site(tmp_path_factory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("accounts-https")
    env = _env(
        data,
        PAPERWIRE_BASE_URL="https://papers.example.org",
        PAPERWIRE_SIGNIN_IP_LIMIT="3",
        PAPERWIRE_SMTP_URL=f"smtp+insecure://127.0.0.1:{free_port()}",  # nothing listens there
        PAPERWIRE_MAIL_FROM="",
    )
    server = start_server(env)
    yield server
    server.stop()


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    return {v.split("=", 1)[0]: v for v in response.headers.get_list("set-cookie")}


def test_https_site_secure_cookies_absolute_links_and_a_mail_outage(https_site):
    site = https_site
    r = httpx.get(site.url + "/signin")
    csrf_cookie = _set_cookies(r)["paperwire_csrf"]
    assert "Secure" in csrf_cookie and "HttpOnly" in csrf_cookie
    seed = csrf_cookie.split(";")[0].split("=", 1)[1]
    cookies = {"Cookie": f"paperwire_csrf={seed}"}  # a Secure cookie: sent by hand over this test's http

    started = time.monotonic()
    r = httpx.post(
        site.url + "/signin",
        data={"email": "secure@example.org", "csrf_token": form_token(r.text)},
        headers=cookies,
    )
    assert r.status_code == 200 and "Check your inbox" in r.text
    assert time.monotonic() - started < 5  # the SMTP server is down: the request did not wait for it

    store = Store.open(site.env["PAPERWIRE_DATABASE_URL"], run_migrations=False)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # the mail thread tried, failed, and will retry later
            with store.engine.connect() as conn:
                row = conn.execute(select(outbox).where(outbox.c.recipient == "secure@example.org")).one()
            # Claiming counts the attempt and marks it "sending"; the failure is recorded just after.
            if row.attempts and row.status != "sending":
                break
            time.sleep(0.1)
    finally:
        store.close()
    assert row.kind == "signin" and row.status == "pending" and row.attempts == 1
    assert "cannot reach" in row.last_error
    msg = email.message_from_bytes(outbox_store.unpack(row.message), policy=email.policy.default)
    assert msg["From"] == "paperwire <paperwire@papers.example.org>"  # default sender from the address
    link = link_in(msg)
    assert link.startswith("https://papers.example.org/signin/confirm?token=")  # PAPERWIRE_BASE_URL

    page = httpx.get(site.url + path_of(link), headers=cookies)
    r = httpx.post(
        site.url + "/signin/confirm",
        data={"token": token_of(link), "csrf_token": form_token(page.text)},
        headers=cookies,
    )
    assert r.status_code == 303
    session = _set_cookies(r)["paperwire_session"]
    assert {"secure", "httponly", "samesite=lax"} <= {p.strip().lower() for p in session.split(";")}


def test_sign_in_requests_are_limited_per_client(https_site):
    site = https_site
    r = httpx.get(site.url + "/signin")
    seed = _set_cookies(r)["paperwire_csrf"].split(";")[0].split("=", 1)[1]
    token = form_token(r.text)
    statuses = []
    for i in range(4):  # the limit is 3 an hour; one was used by the test above, if it ran
        resp = httpx.post(
            site.url + "/signin",
            data={"email": f"ip{i}@example.org", "csrf_token": token},
            headers={"Cookie": f"paperwire_csrf={seed}"},
        )
        statuses.append(resp.status_code)
    assert statuses[-1] == 429 and 200 in statuses
    assert "Too many sign-in requests from your network (at most 3 an hour)" in resp.text
    assert re.search(r"Try again in \d+ minutes", resp.text)
    assert 0 < int(resp.headers["retry-after"]) <= 3600
