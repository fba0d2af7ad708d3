"""Upvotes, daily submissions and hiding through the real server: forms, the JSON API, the HF API."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from huggingface_hub import HfApi
from sqlalchemy import func, select

from paperwire.models import Author, Paper
from paperwire.store import Store, accounts
from paperwire.store.schema import votes as votes_table
from paperwire.web.auth import new_api_token
from tests.live_server import LiveServer, start_server
from tests.recorded_server import RecordedServer, Reply
from tests.test_accounts import client, form_token, sign_in
from tests.test_arxiv_api import body

PAPERS = [
    Paper(
        id=f"2403.{i:05d}",
        title=f"Attention variant number {i} for long documents",
        abstract="We study attention over long documents.",
        authors=[Author("Grace Hopper")],
        categories=["cs.CL"],
        published=datetime(2024, 3, i, tzinfo=UTC),
    )
    for i in range(1, 6)
]
USERS = 24


@pytest.fixture(scope="module")
def arxiv_api() -> Iterator[RecordedServer]:
    server = RecordedServer().start()
    server.add("/api/query", Reply(body("id_1605.08386_s0_m100")), id_list="1605.08386")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory, smtp, arxiv_api) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("votes-site")
    env = {
        "PAPERWIRE_DATA_DIR": str(data),
        "PAPERWIRE_DATABASE_URL": f"sqlite:///{data / 'paperwire.db'}",
        "PAPERWIRE_IMPORT_EMBED_LIMIT": "0",
        "PAPERWIRE_INDEX_FOLLOW_SECONDS": "0.2",
        "PAPERWIRE_SECRET_KEY": "votes-test-key",
        "PAPERWIRE_MAIL_FROM": "paperwire <signin@paperwire.test>",
        "PAPERWIRE_SMTP_URL": smtp.url,
        "PAPERWIRE_SIGNIN_IP_LIMIT": "1000",
        "PAPERWIRE_SIGNIN_EMAIL_LIMIT": "1000",
        "PAPERWIRE_ARXIV_API_URL": arxiv_api.url + "/api/query",
        "PAPERWIRE_HTTP_INTERVAL": "0",
    }
    store = Store.open(env["PAPERWIRE_DATABASE_URL"])
    store.apply(PAPERS)
    store.close()
    server = start_server(env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tokens(site) -> list[str]:
    """Personal API tokens of USERS people (as the account page creates them)."""
    store = Store.open(site.env["PAPERWIRE_DATABASE_URL"], run_migrations=False)
    out = []
    for i in range(USERS):
        user = accounts.ensure_user(store, f"voter{i}@example.org", now=datetime.now(UTC))
        token, token_hash, prefix = new_api_token()
        accounts.create_api_token(
            store, user.id, name="test", token_hash=token_hash, prefix=prefix, now=datetime.now(UTC)
        )
        out.append(token)
    store.close()
    return out


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def vote_rows(site: LiveServer, paper_id: str) -> int:
    store = Store.open(site.env["PAPERWIRE_DATABASE_URL"], run_migrations=False)
    try:
        with store.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(votes_table).where(votes_table.c.paper_id == paper_id)
            ).scalar_one()
    finally:
        store.close()


def test_upvote_api_with_a_token(site, tokens):
    url = f"{site.url}/api/v1/papers/2403.00001/upvote"
    r = httpx.post(url, headers=bearer(tokens[0]))
    assert r.status_code == 200 and r.json() == {"id": "2403.00001", "upvoted": True, "upvotes": 1}
    assert httpx.post(url, headers=bearer(tokens[0])).json()["upvotes"] == 1  # once per person
    assert httpx.post(url, headers=bearer(tokens[1])).json()["upvotes"] == 2
    r = httpx.delete(url, headers=bearer(tokens[1]))
    assert r.json() == {"id": "2403.00001", "upvoted": False, "upvotes": 1}
    assert httpx.get(f"{site.url}/api/v1/papers/2403.00001").json()["upvotes"] == 1
    anonymous = httpx.post(url)
    assert anonymous.status_code == 401 and "error" in anonymous.json()
    assert (
        httpx.post(f"{site.url}/api/v1/papers/2499.99999/upvote", headers=bearer(tokens[0])).status_code
        == 404
    )
    bad = httpx.post(url, headers=bearer("pw_not-a-token"))
    assert bad.status_code == 401


def test_concurrent_votes_count_exactly(site, tokens):
    """Every person votes on one paper at once, half of them take it back at once: the count always
    equals the vote rows."""
    url = f"{site.url}/api/v1/papers/2403.00002/upvote"
    start = threading.Barrier(len(tokens))
    errors: list[str] = []

    def vote(token: str, undo: bool) -> None:
        with httpx.Client(timeout=60) as c:
            start.wait()
            for method in ("POST", "DELETE") if undo else ("POST",):
                r = c.request(method, url, headers=bearer(token))
                if r.status_code != 200:
                    errors.append(f"{method} {r.status_code} {r.text}")

    threads = [threading.Thread(target=vote, args=(t, i % 2 == 0)) for i, t in enumerate(tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    shown = httpx.get(f"{site.url}/api/v1/papers/2403.00002").json()["upvotes"]
    assert shown == vote_rows(site, "2403.00002") == len(tokens) // 2


def test_vote_form_without_javascript_and_csrf(site, smtp):
    c = client(site)
    sign_in(c, smtp, "former@example.org")
    page = c.get("/papers/2403.00003")
    assert 'action="/papers/2403.00003/upvote"' in page.text
    no_token = c.post("/papers/2403.00003/upvote", data={"action": "add", "next": "/papers/2403.00003"})
    assert no_token.status_code == 403
    r = c.post(
        "/papers/2403.00003/upvote",
        data={"action": "add", "next": "/search?q=attention", "csrf_token": form_token(page.text)},
    )
    assert r.status_code == 303 and r.headers["location"] == "/search?q=attention"
    after = c.get("/papers/2403.00003").text
    assert re.search(r'<form class="vote on wide".*?<span class="count">1</span>', after, re.S)
    # The JSON API with the session cookie needs the CSRF header too (a cross-site fetch has neither).
    api = "/api/v1/papers/2403.00003/upvote"
    assert c.delete(api).status_code == 403
    r = c.delete(api, headers={"X-CSRF-Token": form_token(after)})
    assert r.status_code == 200 and r.json()["upvotes"] == 0
    signed_out = httpx.post(f"{site.url}/papers/2403.00003/upvote", data={"csrf_token": "x"})
    assert signed_out.status_code in (303, 403)


def test_submit_a_paper_to_todays_list(site, smtp, tokens):
    c = client(site)
    sign_in(c, smtp, "submitter@example.org")
    today = datetime.now(UTC).date().isoformat()
    page = c.get(f"/papers/date/{today}")
    r = c.post(
        "/papers/submit",
        data={"paper": "https://arxiv.org/abs/2403.00004v1", "csrf_token": form_token(page.text)},
    )
    assert r.status_code == 303 and r.headers["location"] == f"/papers/date/{today}?submitted=2403.00004"
    listed = c.get(r.headers["location"]).text
    assert "is on today's list" in listed and "/papers/2403.00004" in listed
    again = c.post("/papers/submit", data={"paper": "2403.00004", "csrf_token": form_token(listed)})
    assert again.status_code == 409 and "already on the list of " + today in again.text
    # A paper the catalogue does not have yet is fetched from arXiv (a recorded response here).
    fetched = c.post("/papers/submit", data={"paper": "1605.08386", "csrf_token": form_token(listed)})
    assert fetched.status_code == 303
    assert "/papers/1605.08386" in c.get(fetched.headers["location"]).text
    bad = c.post("/papers/submit", data={"paper": "not an id", "csrf_token": form_token(listed)})
    assert bad.status_code == 400

    httpx.post(f"{site.url}/api/v1/papers/2403.00004/upvote", headers=bearer(tokens[5]))
    api = HfApi(endpoint=site.url)
    [first, *_] = list(api.list_daily_papers(date=today))
    assert first.id == "2403.00004" and first.upvotes == 1
    assert first.submitted_by is not None and first.submitted_by.username.startswith("user-")
    assert "@" not in first.submitted_by.username  # never anyone's e-mail address
    info = api.paper_info("2403.00004")
    assert info.upvotes == 1 and info.submitted_at is not None


def test_admins_hide_papers(site, smtp):
    store = Store.open(site.env["PAPERWIRE_DATABASE_URL"], run_migrations=False)
    accounts.set_admin(store, "admin@example.org", True, now=datetime.now(UTC))
    store.close()
    admin = client(site)
    sign_in(admin, smtp, "admin@example.org")
    page = admin.get("/papers/2403.00005")
    assert "Hide from lists" in page.text
    r = admin.post("/papers/2403.00005/hide", data={"hidden": "1", "csrf_token": form_token(page.text)})
    assert r.status_code == 303
    assert "/papers/2403.00005" not in httpx.get(f"{site.url}/search", params={"q": "attention variant"}).text
    assert httpx.get(f"{site.url}/papers/2403.00005").status_code == 404  # gone for everyone else
    assert httpx.get(f"{site.url}/api/v1/papers/2403.00005").status_code == 404
    assert "Unhide" in admin.get("/papers/2403.00005").text  # admins still see it
    someone = client(site)
    sign_in(someone, smtp, "someone@example.org")
    page = someone.get("/papers/2403.00001")
    denied = someone.post(
        "/papers/2403.00001/hide", data={"hidden": "1", "csrf_token": form_token(page.text)}
    )
    assert denied.status_code == 403
    page = admin.get("/papers/2403.00005")
    admin.post("/papers/2403.00005/hide", data={"hidden": "0", "csrf_token": form_token(page.text)})
    assert httpx.get(f"{site.url}/papers/2403.00005").status_code == 200


def new_token(site: LiveServer, address: str) -> str:
    store = Store.open(site.env["PAPERWIRE_DATABASE_URL"], run_migrations=False)
    try:
        user = accounts.ensure_user(store, address, now=datetime.now(UTC))
        token, token_hash, prefix = new_api_token()
        accounts.create_api_token(
            store, user.id, name="t", token_hash=token_hash, prefix=prefix, now=datetime.now(UTC)
        )
        return token
    finally:
        store.close()


def test_votes_are_rate_limited_per_person(site, tokens):
    url = f"{site.url}/api/v1/papers/2403.00001/upvote"
    with httpx.Client(timeout=30, headers=bearer(new_token(site, "eager@example.org"))) as c:
        codes = [(c.post if i % 2 == 0 else c.delete)(url).status_code for i in range(61)]
        assert codes[:60] == [200] * 60 and codes[60] == 429
        r = c.post(url)
        assert (
            r.status_code == 429
            and "too many votes" in r.json()["error"]
            and int(r.headers["retry-after"]) >= 1
        )
    # Another person is not held up by it.
    assert httpx.post(url, headers=bearer(tokens[-2])).status_code == 200
