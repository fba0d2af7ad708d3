"""Screenshots of the main pages at desktop and phone widths, for docs/screenshots/ (and for looking at).

python scripts/screenshots.py http://localhost:8000 docs/screenshots
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PAGES = {
    "home": "/",
    "search": "/search?q=mutaton+tetsing",
    "search-semantic": "/search?q=robot+manipulating+dough+with+tools",
    "paper": "/papers/0704.0001",
    "month": "/papers/month/2007-04",
    "daily": "/papers/date/2026-04-06",
    "signin": "/signin",
}
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}


def main(base: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for size, (width, height) in SIZES.items():
            page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
            for name, path in PAGES.items():
                page.goto(base + path, wait_until="networkidle")
                target = out / f"{name}-{size}.png"
                page.screenshot(path=str(target), full_page=False)
                print(target)
            page.close()
        browser.close()


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8000",
        Path(sys.argv[2] if len(sys.argv) > 2 else "docs/screenshots"),
    )
