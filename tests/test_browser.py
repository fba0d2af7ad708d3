"""The site in a real browser: Debian's Chromium driven by Playwright, against `paperwire serve`."""

from __future__ import annotations

import re

import pytest

from tests.browser import needs_chromium

pytest.importorskip("playwright.sync_api")

pytestmark = needs_chromium


def test_search_from_the_header_then_open_a_paper(page, sample_site):
    page.goto(sample_site.url + "/")
    page.fill("#q-top", "diphotn prodction")  # two typos
    page.press("#q-top", "Enter")
    page.wait_for_url(re.compile(r"/search\?q=diphotn"))
    assert "Including results for “diphoton production”" in page.locator(".summary").inner_text()
    first = page.locator("ol.results li.card").first
    assert "diphoton" in first.locator("h3").inner_text().lower()
    assert first.locator("mark").count() >= 2  # the matched words are highlighted
    first.locator("h3 a").click()
    page.wait_for_url(re.compile(r"/papers/0704\.0001$"))
    assert "Calculation of prompt diphoton production" in page.locator("h1").inner_text()
    assert page.locator(".similar li").count() >= 3
    assert page.locator("a", has_text="PDF").first.get_attribute("href").startswith("https://arxiv.org/pdf/")


def test_pagination_and_filters(page, sample_site):
    page.goto(sample_site.url + "/search?q=quantum&mode=keyword")
    summary = page.locator(".summary").inner_text()
    total = int(re.search(r"([\d,]+) results", summary)[1].replace(",", ""))
    assert total > 20
    first_page = page.locator("ol.results h3").all_inner_texts()
    page.click("a[rel=next]")
    page.wait_for_url(re.compile(r"page=2"))
    assert "Page 2 of" in page.locator(".pager .where").inner_text()
    assert not set(first_page) & set(page.locator("ol.results h3").all_inner_texts())

    assert page.locator("details.filters").get_attribute("open") is not None  # a filter (mode) is set: open
    page.fill("input[name=category]", "quant-ph")
    page.locator(".search-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"category=quant-ph"))
    filtered = int(re.search(r"([\d,]+) results", page.locator(".summary").inner_text())[1].replace(",", ""))
    assert 0 < filtered < total
    for cats in page.locator("ol.results .cats").all_inner_texts():
        assert "quant-ph" in cats


def test_results_follow_the_query_as_it_is_typed(page, sample_site):
    """Search as you type: no submit, no reload; the address bar follows, and a slower answer to an older
    prefix never replaces a newer one (keys come slower than the pause, so every prefix is fetched)."""
    page.goto(sample_site.url + "/search")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    page.locator("#q").press_sequentially("mutation tes", delay=220)
    page.wait_for_function("() => document.querySelector('.summary')?.textContent.includes('mutation tes')")
    page.wait_for_timeout(600)  # time for any late answer to an older prefix to land (it must not)
    assert "mutation tes”" in page.locator(".summary").inner_text()
    live = page.locator("ol.results h3").all_inner_texts()
    assert "mutation testing" in live[0].lower()
    assert page.evaluate("window.sameDocument === true")
    assert re.search(r"/search\?q=mutation\+tes$", page.url)
    assert "for “mutation tes”" in page.locator("p.visually-hidden[role=status]").inner_text()
    assert page.evaluate("history.length") == 2  # about:blank, then this page: one entry, replaced

    page.locator("details.filters summary").click()
    page.select_option("select[name=mode]", "keyword")  # a filter change refreshes too
    page.wait_for_url(re.compile(r"q=mutation\+tes&mode=keyword$"))
    page.wait_for_function("() => document.title.startsWith('mutation tes')")
    live = page.locator("ol.results h3").all_inner_texts()
    page.reload()
    assert page.locator("ol.results h3").all_inner_texts() == live  # what the address shows, exactly
    assert page.evaluate("window.sameDocument") is None


def test_the_api_docs_work_offline(page, sample_site):
    """/docs is Swagger UI from paperwire's own files: it renders the API with every other host cut off."""
    elsewhere = []

    def only_the_site(route):  # noqa: ANN001
        if route.request.url.startswith(sample_site.url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_site)
    page.goto(sample_site.url + "/docs")
    page.locator(".opblock-summary-path[data-path='/api/v1/search']").wait_for()
    page.locator(".opblock-summary-path[data-path='/api/daily_papers']").wait_for()
    assert "paperwire" in page.locator(".info .title").inner_text()
    assert elsewhere == []


def test_pages_keep_to_their_content_security_policy(page, sample_site):
    """Every page works under its policy (no violation reported), and the policy does stop an inline script
    that markup slipping past the escaping would need."""
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    for path in ("/", "/search?q=dipole+scattering", "/papers/0704.0038", "/papers/month/2007-04", "/docs"):
        response = page.goto(sample_site.url + path)
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        assert response.headers["x-content-type-options"] == "nosniff", path
        page.wait_for_load_state("networkidle")
    page.locator(".opblock-summary-path[data-path='/api/v1/search']").wait_for()  # /docs ran its script
    assert violations == []

    page.goto(sample_site.url + "/search?q=dipole")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.injected = 1';"
        " document.body.append(s); }"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("window.injected") is None
    assert any("inline script" in v for v in violations), violations


def test_slash_jumps_to_the_search_box(page, sample_site):
    page.goto(sample_site.url + "/papers/0704.0001")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q-top"
    page.keyboard.type("au:Balázs")  # the slash was not typed into the box
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=au%3ABal"))
    page.locator("ol.results li.card").first.wait_for()
    page.locator("ol.results h3 a").first.focus()
    page.keyboard.press("/")  # on the search page, its own box
    assert page.evaluate("[document.activeElement.id, document.activeElement.value]") == ["q", "au:Balázs"]
    page.keyboard.press("End")
    page.keyboard.type(" a/b")  # in a field, "/" is just a character
    assert page.input_value("#q") == "au:Balázs a/b"


def test_semantic_query_finds_a_paper_without_shared_words(page, sample_site):
    page.goto(sample_site.url + "/search?q=" + "making+several+robots+agree+without+a+leader")
    assert page.locator("ol.results li.card").count() > 0
    assert "close in meaning" in page.locator("ol.results .why").first.inner_text()


def test_daily_lists_navigate(page, sample_site):
    page.goto(sample_site.url + "/papers/month/2007-04")
    assert page.locator("ol.cards li.card").count() == 30
    page.select_option("form.sort select", "date")  # the sort menu applies at once, no button
    page.wait_for_url(re.compile(r"/papers/month/2007-04\?sort=date$"))
    dates = page.locator("ol.cards time").evaluate_all("ts => ts.map(t => t.getAttribute('datetime'))")
    assert len(dates) == 30 and dates == sorted(dates, reverse=True)
    page.click("a[rel=prev]")
    page.wait_for_url(re.compile(r"/papers/month/2007-03$"))
    assert "March 2007" in page.locator(".period .label").inner_text()
    page.click("nav.tabs a:has-text('Weekly')")
    page.wait_for_url(re.compile(r"/papers/week/2007-W"))


@pytest.mark.parametrize("path", ["/", "/search?q=neutrino", "/papers/0704.0001", "/papers/month/2007-04"])
def test_pages_fit_a_phone(browser, sample_site, path):
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        phone.goto(sample_site.url + path)
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
        assert phone.locator("header .brand").is_visible()
    finally:
        phone.close()
