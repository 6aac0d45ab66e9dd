"""A real headless Chromium (Debian's, installed by `make test`) driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
_FLAGS = [  # no sandbox as root; no background connections on a closed network
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def browser_page(width: int = 1400, height: int = 1000) -> Iterator[Page]:
    if not CHROMIUM.exists():  # `make browser` installs it where it can (as root)
        pytest.skip("SKIPPED LOUDLY: no /usr/bin/chromium (apt-get install chromium, as root)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()
