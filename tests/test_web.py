"""The web pages, served by the real `paperwire serve` process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from paperwire.models import Author, Paper
from paperwire.store import Store

HOSTILE_TITLE = "<script>alert(1)</script> & $x<y$"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(env) -> Iterator[str]:
    store = Store.open(env["PAPERWIRE_DATABASE_URL"])
    store.apply(
        [
            Paper(
                id="2401.00001",
                title=HOSTILE_TITLE,
                abstract="First paragraph with <b>markup</b> & ampersands.\nSecond paragraph.",
                authors=[Author("Ada <Lovelace>", "Engines & Co")],
                categories=["cs.CL"],
                published=datetime(2024, 1, 2, tzinfo=UTC),
                doi="10.1/x",
            ),
            Paper(
                id="hep-th/9901001",
                title="An old-style paper",
                categories=["hep-th"],
                published=datetime(1999, 1, 4, tzinfo=UTC),
            ),
        ]
    )
    store.close()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "paperwire.cli", "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("server did not start: " + proc.stdout.read().decode(errors="replace"))
    yield base
    proc.terminate()
    proc.wait(timeout=10)


def test_home_lists_papers_newest_first_and_escapes(server):
    html = httpx.get(server + "/").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; $x&lt;y$" in html
    assert "<script>alert(1)" not in html
    assert "Ada &lt;Lovelace&gt;" in html
    assert html.index("/papers/2401.00001") < html.index("/papers/hep-th/9901001")


def test_paper_page(server):
    r = httpx.get(server + "/papers/2401.00001v1")
    assert r.status_code == 200
    assert "First paragraph with &lt;b&gt;markup&lt;/b&gt; &amp; ampersands." in r.text
    assert "Engines &amp; Co" in r.text
    assert "https://arxiv.org/pdf/2401.00001" in r.text
    assert "https://doi.org/10.1/x" in r.text
    assert httpx.get(server + "/papers/hep-th/9901001").status_code == 200


def test_unknown_and_invalid_ids_are_404(server):
    assert httpx.get(server + "/papers/2401.99999").status_code == 404
    r = httpx.get(server + "/papers/<img src=x>")
    assert r.status_code == 404 and "<img src=x>" not in r.text
