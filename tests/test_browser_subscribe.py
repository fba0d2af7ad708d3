"""The e-mail digest subscription in a real browser (Debian's Chromium, driven by Playwright): the box on
the home page, the confirmation link read from a real SMTP server on loopback and confirmed with the
button, the preferences page, and the unsubscribe link a digest carries."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from html.parser import HTMLParser

import httpx
import pytest

from paperwire.store import Store
from paperwire.store import subscriptions as subs
from paperwire.store.subscriptions import Preferences, Topic
from paperwire.web.subscribe import unsubscribe_url
from tests.browser import needs_chromium
from tests.live_server import LiveServer
from tests.test_subscriptions import _start, get_settings_for, links_in, wait_for_mail

pytest.importorskip("playwright.sync_api")

pytestmark = needs_chromium

ADDRESS = "lovelace@example.org"


@pytest.fixture(scope="module")
def site(tmp_path_factory, smtp) -> Iterator[LiveServer]:
    server = _start(tmp_path_factory.mktemp("browser-subscribe"), smtp, PAPERWIRE_SUBSCRIBE_IP_LIMIT="1000")
    yield server
    server.stop()


class _Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]


def html_links(message: EmailMessage) -> list[str]:
    """The links of the HTML part, entities decoded as a mail client does."""
    parser = _Hrefs()
    parser.feed(message.get_body(("html",)).get_content())
    return parser.hrefs


def status_of(db: Store, address: str) -> str:
    return subs.get_subscriber_by_email(db, address).status


def test_subscribe_confirm_choose_preferences_and_unsubscribe(page, site, smtp, db):
    # 1. The box on every page: the home page's asks for an address and says a confirmation was sent.
    page.goto(site.url + "/")
    box = page.get_by_role("region", name="Get trending papers in your email inbox")
    box.get_by_label("E-mail address").fill(ADDRESS)
    box.get_by_role("button", name="Subscribe", exact=True).click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    assert re.search(r"/subscribe$", page.url)
    notice = page.get_by_role("status").inner_text()
    assert ADDRESS in notice and "follow the confirmation link" in notice
    assert status_of(db, ADDRESS) == "pending"

    # 2. The confirmation message, from the SMTP server, parsed with the email package.
    [message] = wait_for_mail(smtp, ADDRESS)
    assert message["Subject"] == "Confirm your paperwire digest subscription"
    assert message.get_content_type() == "multipart/alternative"
    links = links_in(message)  # from the text part
    confirm, mailed_prefs = links["subscribe/confirm"], links["preferences"]
    assert confirm.startswith(site.url + "/subscribe/confirm?token=")
    assert mailed_prefs.startswith(site.url + "/preferences?token=")
    in_html = html_links(message)
    assert confirm in in_html and mailed_prefs in in_html  # the HTML part carries the same links

    # A mail scanner fetching the link (with and without a browser) confirms nothing.
    assert httpx.get(confirm, timeout=30).status_code == 200
    page.goto(confirm)
    page.get_by_role("heading", name="Confirm your subscription").wait_for()
    assert ADDRESS in page.locator("main").inner_text()
    assert status_of(db, ADDRESS) == "pending"
    page.get_by_role("button", name="Confirm my subscription").click()
    page.get_by_role("heading", name="You are subscribed").wait_for()
    assert ADDRESS in page.get_by_role("status").inner_text()
    sub = subs.get_subscriber_by_email(db, ADDRESS)
    assert sub.status == "active" and sub.confirmed_at is not None

    # 3. Preferences, from the link on the page that confirmed.
    prefs_link = page.get_by_role("link", name="Choose how often, when and what")
    assert prefs_link.get_attribute("href").startswith(site.url + "/preferences?token=")
    prefs_link.click()
    page.get_by_role("heading", name="Digest preferences").wait_for()
    prefs_url = page.url
    main = page.locator("main")
    assert ADDRESS in main.inner_text() and "Subscribed." in main.inner_text()
    # The defaults are what the form shows.
    assert page.get_by_role("radio", name="Daily", exact=True).is_checked()
    assert page.get_by_label("Hour of delivery").input_value() == "8"
    assert page.get_by_label("Time zone").input_value() == "UTC"
    assert page.get_by_label("Papers per digest").input_value() == "10"

    page.get_by_role("radio", name="Weekly").check()
    page.get_by_label("Hour of delivery").select_option("18")
    page.get_by_label("Time zone").fill("America/New_York")
    page.get_by_label("Papers per digest").fill("25")
    page.get_by_label("arXiv categories").fill("cs.CL")
    page.get_by_label("Keywords or saved searches").fill("speech recognition")
    page.get_by_label("Authors, one per line").fill("Grace Hopper")
    page.get_by_role("button", name="Save preferences").click()
    page.get_by_role("status").filter(has_text="Your preferences are saved.").wait_for()
    assert page.get_by_role("alert").count() == 0

    page.goto(prefs_url)  # a fresh GET: the form shows what was stored
    page.get_by_role("heading", name="Digest preferences").wait_for()
    assert page.get_by_role("radio", name="Weekly").is_checked()
    assert not page.get_by_role("radio", name="Daily", exact=True).is_checked()
    assert page.get_by_label("Hour of delivery").input_value() == "18"
    assert page.get_by_label("Time zone").input_value() == "America/New_York"
    assert page.get_by_label("Papers per digest").input_value() == "25"
    assert page.get_by_label("arXiv categories").input_value() == "cs.CL"
    assert page.get_by_label("Keywords or saved searches").input_value() == "speech recognition"
    assert page.get_by_label("Authors, one per line").input_value() == "Grace Hopper"
    # The link in the mail opens the same subscriber's preferences.
    page.goto(mailed_prefs)
    assert page.get_by_label("Time zone").input_value() == "America/New_York"

    sub = subs.get_subscriber_by_email(db, ADDRESS)
    assert sub.status == "active"
    assert sub.preferences == Preferences(
        frequency="weekly",
        hour=18,
        timezone="America/New_York",
        size=25,
        weekends=False,
        empty_note=False,
        topics=sub.topics,
    )
    assert set(sub.topics) == {
        Topic("category", "cs.CL"),
        Topic("query", "speech recognition"),
        Topic("author", "Grace Hopper"),
    }

    # 4. The unsubscribe link every digest carries: a GET shows a button and changes nothing.
    link = unsubscribe_url(get_settings_for(site), sub, base_url=site.url)
    assert httpx.get(link, timeout=30).status_code == 200
    page.goto(link)
    page.get_by_role("heading", name="Unsubscribe", exact=True).wait_for()
    assert status_of(db, ADDRESS) == "active"
    page.get_by_role("button", name=f"Unsubscribe {ADDRESS}").click()
    page.get_by_role("heading", name="You are unsubscribed").wait_for()
    assert ADDRESS in page.get_by_role("status").inner_text()
    sub = subs.get_subscriber_by_email(db, ADDRESS)
    assert sub.status == "unsubscribed" and sub.unsubscribed_at is not None
    # The link opened again says so, and has no button left.
    page.goto(link)
    assert "unsubscribed already" in page.locator("main").inner_text()
    assert page.get_by_role("button", name=re.compile(r"^Unsubscribe")).count() == 0
    assert len(smtp.handler.to(ADDRESS)) == 1  # nothing but the confirmation was ever sent
