"""Signing in and out in a real browser (Debian's Chromium, driven by Playwright): the e-mailed link is
read from a real SMTP server, opened, confirmed with the button; then the account page and sign-out."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from tests.browser import needs_chromium
from tests.live_server import LiveServer, site_env, start_server
from tests.smtp_server import SmtpServer

pytest.importorskip("playwright.sync_api")

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def site(tmp_path_factory, smtp) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("browser-accounts")
    server = start_server(site_env(data, PAPERWIRE_SMTP_URL=smtp.url))
    yield server
    server.stop()


def emailed_link(smtp: SmtpServer, address: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = smtp.handler.to(address)
        if got:
            text = got[-1].message.get_body(("plain",)).get_content()
            return re.search(r"(http\S+/signin/confirm\?token=\S+)", text)[1]
        time.sleep(0.05)
    raise AssertionError(f"no sign-in message to {address}")


def test_sign_in_with_the_emailed_link_then_sign_out(page, site, smtp):
    page.goto(site.url + "/")
    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url(re.compile(r"/signin$"))
    page.fill("#signin-email", "grace@example.org")
    page.get_by_role("button", name="E-mail me a sign-in link").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    assert "grace@example.org" in page.locator("main").inner_text()

    page.goto(emailed_link(smtp, "grace@example.org"))
    assert page.locator("h1").inner_text() == "Sign in as grace@example.org"
    page.get_by_role("button", name="Sign in as grace@example.org").click()
    page.wait_for_url(re.compile(r"/account$"))
    assert page.locator("h1").inner_text() == "Your account"
    assert page.locator(".account-email").inner_text() == "grace@example.org"
    assert page.locator("header .account-link").inner_text() == "grace@example.org"
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["paperwire_session"]["httpOnly"] and cookies["paperwire_session"]["sameSite"] == "Lax"
    # Scripts on the page cannot read the session (nor the CSRF seed).
    assert "paperwire_session" not in page.evaluate("document.cookie")

    page.fill("#token-name", "notebook")
    page.get_by_role("button", name="Create token").click()
    token = page.locator(".token-value").input_value()
    assert token.startswith("pw_")
    assert page.locator("table.tokens").inner_text().count("notebook") == 1

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.locator("header").get_by_role("link", name="Sign in").is_visible()
    page.goto(site.url + "/account")
    page.wait_for_url(re.compile(r"/signin\?next=/account$"))


def test_the_link_signs_in_even_in_a_browser_that_never_saw_the_site(page, browser, site, smtp):
    """The link is often opened in another browser than the one that asked for it (a phone's mail app):
    the confirm page sets that browser's CSRF cookie itself, and the button works there."""
    page.goto(site.url + "/signin")
    page.fill("#signin-email", "phone@example.org")
    page.get_by_role("button", name="E-mail me a sign-in link").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    link = emailed_link(smtp, "phone@example.org")

    other = browser.new_context()
    try:
        fresh = other.new_page()
        fresh.goto(link)
        fresh.get_by_role("button", name="Sign in as phone@example.org").click()
        fresh.wait_for_url(re.compile(r"/account$"))
        assert fresh.locator(".account-email").inner_text() == "phone@example.org"
    finally:
        other.close()


def test_sign_in_upvote_submit_a_daily_paper_and_sign_out(page, site, smtp):
    """The whole loop of issue 5 in a browser: sign in through the e-mailed link, upvote (the count
    changes without a page load), submit a paper to today's list, sign out."""
    from datetime import UTC, datetime

    from paperwire.models import Paper
    from paperwire.store import Store

    store = Store.open(site.env["PAPERWIRE_DATABASE_URL"], run_migrations=False)
    store.apply(
        [
            Paper(id="2405.00001", title="Upvotable paper one", published=datetime(2024, 5, 1, tzinfo=UTC)),
            Paper(id="2405.00002", title="Paper to submit today", published=datetime(2024, 5, 2, tzinfo=UTC)),
        ]
    )
    store.close()
    page.goto(site.url + "/signin?next=/papers/2405.00001")
    page.fill("#signin-email", "voter@example.org")
    page.get_by_role("button", name="E-mail me a sign-in link").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    page.goto(emailed_link(smtp, "voter@example.org"))
    page.get_by_role("button", name="Sign in as voter@example.org").click()
    page.wait_for_url(re.compile(r"/papers/2405\.00001$"))

    vote = page.locator("form.vote")
    assert vote.locator(".count").inner_text() == "0"
    page.evaluate("window.__same_page = true")
    vote.locator("button").click()
    page.wait_for_function("() => document.querySelector('form.vote .count').textContent === '1'")
    assert page.evaluate("window.__same_page") is True  # no page load: the script did it
    assert vote.get_attribute("data-voted") == "true" and "on" in vote.get_attribute("class")
    page.reload()
    assert page.locator("form.vote .count").inner_text() == "1"  # stored, not only shown
    page.locator("form.vote button").click()
    page.wait_for_function("() => document.querySelector('form.vote .count').textContent === '0'")

    today = datetime.now(UTC).date().isoformat()
    page.goto(f"{site.url}/papers/date/{today}")
    page.fill("#submit-paper", "arxiv.org/abs/2405.00002")
    page.get_by_role("button", name="Submit", exact=True).click()
    page.wait_for_url(re.compile(rf"/papers/date/{today}\?submitted=2405\.00002$"))
    assert "is on today's list" in page.locator(".notice-ok").inner_text()
    assert "Paper to submit today" in page.locator("ol.cards").inner_text()

    page.goto(site.url + "/account")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.locator("header").get_by_role("link", name="Sign in").is_visible()
