"""The quick tour's page, the one `make demo` writes, as a reader opens it (slow: it runs
the quick tour, about 4 minutes on an idle 2-core machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfimprove.tour import run_tour
from tests.conftest import CONFIGS
from tests.reports.browser import browser_page


@pytest.mark.slow
def test_quick_tour_page_is_small_has_contents_and_does_not_overflow(tmp_path: Path) -> None:
    page_path, results = run_tour(CONFIGS / "tour.yaml", tmp_path / "runs", quick=True)
    assert page_path.stat().st_size < 2 * 2**20
    failing = [c for _, claims in results for c in claims if c.holds is False]
    with browser_page(1400) as page:
        page.goto(page_path.as_uri())
        headings = page.locator("nav#contents h3").all_inner_texts()
        if failing:
            assert headings[0] == f"Claims that do not hold ({len(failing)})"
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1400
        alts = page.locator("figure img").evaluate_all("imgs => imgs.map(i => i.alt)")
        assert all(alt and "/" not in alt.split(" ")[0] for alt in alts)
