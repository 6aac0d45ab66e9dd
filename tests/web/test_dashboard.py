"""The runs dashboard lists every run (waiting ones highlighted, broken ones marked) and a
running run's page shows its metrics moving."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import expect

from selfimprove.web.server import background_server
from tests.reports.browser import browser_page
from tests.web.pages import HEIGHT, WIDTH, log_in, make_run, queue_items, rationale, screenshot

START_SECONDS = 60


def start_long_run(runs: Path) -> subprocess.Popen[bytes]:
    """A cheap collapse run with far more generations than the test lasts."""
    command = [
        sys.executable, "-m", "selfimprove", "--runs-dir", str(runs), "run", "collapse/gaussian",
        "--set", "generations=100000", "--set", "num_seeds=4", "--set", "monitor_every=100000",
    ]  # fmt: skip
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def first_generation(runs: Path, process: subprocess.Popen[bytes]) -> str:
    """The running run's id, once it has committed a generation."""
    import sqlite3

    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        for database in runs.glob("collapse-gaussian-*/run.sqlite"):
            try:
                with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True) as db:
                    if db.execute("SELECT COUNT(*) FROM generations").fetchone()[0] > 1:
                        return database.parent.name
            except sqlite3.Error:
                pass  # its schema is being created
        time.sleep(0.2)
    raise AssertionError(f"the run committed no generation in {START_SECONDS} s")


def test_the_dashboard_lists_runs_and_a_running_runs_metrics_move(tmp_path: Path) -> None:
    waiting = make_run(tmp_path, arms=("star", "star/unreviewed"), status="waiting")
    queue_items(waiting, [rationale("1+2=", "Answer 3"), rationale("2+5=", "Answer 7")])
    (tmp_path / "star-20260101-000000-dead").mkdir()  # a start killed before its database
    (tmp_path / "broken-20260101-000000-beef").mkdir()
    (tmp_path / "broken-20260101-000000-beef" / "run.sqlite").write_bytes(b"not a database")
    process = start_long_run(tmp_path)
    try:
        run_id = first_generation(tmp_path, process)
        with background_server(tmp_path) as (base, token), browser_page(WIDTH, HEIGHT) as page:
            log_in(page, base, token)
            rows = page.locator("#runs tbody tr")
            expect(rows).to_have_count(4)
            running = page.locator(f"tr[data-run='{run_id}']")
            expect(running.locator(".status")).to_have_text("running")
            expect(running.locator("td").nth(3)).to_contain_text("replace, mle, M=100")
            parked = page.locator(f"tr[data-run='{waiting.name}']")
            expect(parked).to_have_class("waiting")
            expect(parked.locator(".status")).to_have_text("waiting")
            expect(parked.locator("td").nth(5)).to_have_text("2")
            for name in ("star-20260101-000000-dead", "broken-20260101-000000-beef"):
                status = page.locator(f"tr[data-run='{name}'] .status")
                expect(status).to_contain_text("broken")
                assert page.locator(f"tr[data-run='{name}'] a").count() == 0
            screenshot(page, "dashboard.png")

            page.goto(f"{base}/runs/{run_id}")
            shown = page.locator("#metrics td.generation").first
            expect(shown).not_to_have_text("-")
            first = int(shown.inner_text())
            expect(shown).not_to_have_text(str(first), timeout=10_000)  # refreshed each second
            assert int(shown.inner_text()) > first
            expect(page.locator("#metrics")).to_contain_text("collapse/sigma_median")
            expect(page.locator("#run-status")).to_have_text("running")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        if process.stderr:
            process.stderr.close()
