"""The report as a reader meets it, in a real headless Chromium at 1400 px: contents first
with failing claims first, no horizontal overflow, human titles, a working filter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from selfimprove.core.records import Claim, ClaimPlot
from selfimprove.core.store import RunStore
from selfimprove.experiments import claims_for, load_config, start_run
from selfimprove.reports.html import study, write_page
from tests.conftest import CONFIGS
from tests.reports.browser import browser_page

FAILING = Claim(
    "a claim made to fail",
    "measured 0.5, needs 0.9",
    False,
    ClaimPlot("collapse/sigma_median", holds_within=(0.9, None)),
)
UNCHECKED = Claim(
    "a claim these settings cannot test", "not checked at these settings: needs 400 seeds", None
)


@pytest.fixture(scope="module")
def page_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    studies = []
    recipes = (
        ("collapse/policies.yaml", ["generations=20", "num_seeds=16", "monitor_every=5"]),
        ("collapse/guarded.yaml", ["generations=30", "num_seeds=16"]),
    )
    for index, (recipe, overrides) in enumerate(recipes):
        config = load_config(CONFIGS / recipe, overrides)
        store = RunStore.open(start_run(config, runs).run_dir)
        claims = claims_for(config, store)
        if index == 1:
            claims = [*claims, FAILING, UNCHECKED]
        studies.append(study(store, claims, f"study {index}: {recipe}", f"s{index}"))
        store.close()
    return write_page(runs / "page.html", "a test page", studies)


def test_page_is_self_contained_and_small(page_path: Path) -> None:
    text = page_path.read_text()
    assert page_path.stat().st_size < 2 * 2**20
    assert not re.search(r"""(src|href)=["'](https?:)?//""", text)


def test_contents_come_first_with_failing_claims_first(page_path: Path) -> None:
    with browser_page() as page:
        page.goto(page_path.as_uri())
        headings = page.locator("h2, h3").all_inner_texts()
        assert headings[0] == "Contents"
        assert headings[1].startswith("Claims that do not hold (")
        # ours, and the accumulate claim of policies.yaml: 16 seeds cannot pin its median down
        assert headings.index("Studies") > headings.index("Not checked (2)") > 1
        failing = page.locator("nav#contents ol").first.inner_text()
        assert "a claim made to fail" in failing and "measured 0.5, needs 0.9" in failing
        assert "a claim these settings cannot test" not in failing
        # every link in the contents leads somewhere on the page
        targets = page.locator("nav#contents a").evaluate_all("as => as.map(a => a.hash.slice(1))")
        assert targets and all(page.locator(f"[id='{t}']").count() == 1 for t in targets)


def test_no_horizontal_overflow_at_1400_px(page_path: Path) -> None:
    with browser_page(1400) as page:
        page.goto(page_path.as_uri())
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1400


def test_every_figure_has_a_human_title_and_a_key_to_search(page_path: Path) -> None:
    with browser_page() as page:
        page.goto(page_path.as_uri())
        alts = page.locator("figure img").evaluate_all("imgs => imgs.map(i => i.alt)")
        assert len(alts) > 10
        assert not [a for a in alts if re.fullmatch(r"[a-z_]+/[a-z0-9_/]+", a)], (
            "raw keys as titles"
        )
        total = len(alts)
        page.fill("#filter", "sigma")
        shown = page.locator("figure[data-search]:visible").evaluate_all(
            "fs => fs.map(f => f.dataset.search)"
        )
        assert 0 < len(shown) < total and all("sigma" in s for s in shown)
