"""A STaR run with a review gate waits for people; reviewed in the browser, it resumes past
that generation and trains on exactly what was accepted."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from selfimprove.core.store import RunStore
from selfimprove.experiments import parse_config, resume_run, start_run
from selfimprove.oversight.queue import ReviewQueue
from selfimprove.web.server import background_server
from tests.reasoning.test_star import TINY
from tests.reports.browser import browser_page
from tests.web.pages import HEIGHT, WIDTH, log_in


def test_a_waiting_run_reviewed_in_the_browser_resumes(tmp_path: Path) -> None:
    config = parse_config({**TINY, "generations": 1, "arms": ["star"], "review": {}}, "web")
    started = start_run(config, tmp_path)
    assert started.status == "waiting"
    run_id = started.run_dir.name
    with ReviewQueue.open(started.run_dir) as queue:
        pending = len(queue.items(status="pending"))
    assert pending > 0

    with background_server(tmp_path) as (base, token), browser_page(WIDTH, HEIGHT) as page:
        log_in(page, base, token)
        row = page.locator(f"tr[data-run='{run_id}']")
        expect(row).to_have_class("waiting")
        expect(row.locator("td").nth(5)).to_have_text(str(pending))
        page.goto(f"{base}/runs/{run_id}/review")
        for decided in range(1, pending + 1):
            if decided % 3 == 0:  # every third rejected, with the default reason
                page.keyboard.press("r")
                page.keyboard.press("Enter")
            else:
                page.keyboard.press("a")
            expect(page.locator("#progress")).to_have_attribute("data-decided", str(decided))
        expect(page.locator("#item")).to_have_text("Nothing left for you to review.")
        page.goto(base + "/")
        expect(row.locator("td").nth(5)).to_have_text("0")

    rejected = pending // 3
    with ReviewQueue.open(started.run_dir) as queue:
        assert queue.counts() == {
            "pending": 0,
            "accept": pending - rejected,
            "reject": rejected,
            "edit": 0,
            "disputed": 0,
        }
        assert {d.reason for d in queue.decisions() if d.action == "reject"} == {"incorrect"}
    resumed = resume_run(run_id, tmp_path)
    assert resumed.status == "finished"
    store = RunStore.open(run_id, tmp_path)
    try:
        assert store.last_generation("star") == 1
        assert store.decisions("star")[1][0] != "wait"
        metrics = store.metrics("star")[1]
        assert metrics["review/accepted"] == pending - rejected
        assert metrics["review/rejected"] == rejected
    finally:
        store.close()
