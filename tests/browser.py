"""Debian's Chromium driven by Playwright: what every browser test shares (the fixtures `browser` and
`page` are in conftest.py)."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# For a browser test module: `pytestmark = needs_chromium`.
needs_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed"
)
