"""The review queue in a real browser, keyboard only: decisions reach the queue and the audit
log; adjudication settles a disagreement; model text never runs as HTML."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from selfimprove.oversight.queue import Item, ReviewQueue
from tests.reports.browser import browser_page
from tests.web.pages import HEIGHT, WIDTH, log_in, make_run, queue_items, rationale, screenshot

SCRIPT = "<script>window.__pwned=1</script>"
IMAGE = '<img src=x onerror="window.__pwned=2">'


@pytest.fixture(scope="module")
def page(server: tuple[str, str]) -> Iterator[Page]:
    base, token = server
    with browser_page(WIDTH, HEIGHT) as page:
        log_in(page, base, token)
        yield page


def wait_decided(page: Page, count: int) -> None:
    expect(page.locator("#progress")).to_have_attribute("data-decided", str(count))


def test_a_keyboard_session_writes_decisions_and_the_audit_log(
    runs: Path, server: tuple[str, str], page: Page
) -> None:
    run_dir = make_run(runs)
    items = [
        rationale("12+7=", "12+7: 2+7=9, carry 0; 1+0=1. Answer 19"),
        rationale("45+38=", "45+38: 5+8=13, carry 1; 4+3+1=8. Answer 83"),
        rationale("66+5=", "66+5: 6+5=11, carry 1; 6+1=7.\nAnswer 71"),
        rationale("9+9=", "9+9: 9+9=18. Answer 18"),
    ]
    queue_items(run_dir, items)
    with ReviewQueue.open(run_dir) as queue:
        before = queue.audit_entries()
    base, _ = server
    page.goto(f"{base}/runs/{run_dir.name}/review?reviewer=alice")
    expect(page.locator("#progress")).to_contain_text("4 left for you")
    expect(page.locator("#item")).to_have_attribute("data-item", items[0].id)
    expect(page.locator("#item")).to_contain_text("Answer 19")

    page.keyboard.press("a")
    wait_decided(page, 1)
    expect(page.locator("#item")).to_have_attribute("data-item", items[1].id)
    page.keyboard.press("r")
    expect(page.locator("#prompt")).to_contain_text("4 duplicate")
    page.keyboard.press("4")
    wait_decided(page, 2)
    page.keyboard.press("e")
    page.keyboard.press("Control+End")
    page.keyboard.type(" (checked)")
    page.keyboard.press("Control+Enter")
    wait_decided(page, 3)
    # the side-by-side diff of the edit: the changed line, old left and new right
    changed = page.locator("#last table.diff tr.replace")
    expect(changed.locator("td.old")).to_have_text("Answer 71")
    expect(changed.locator("td.new")).to_have_text("Answer 71 (checked)")
    expect(page.locator("#item")).to_have_attribute("data-item", items[3].id)
    screenshot(page, "review.png")
    page.keyboard.press("s")
    wait_decided(page, 4)
    # the skipped item stays open: the page says so, since a waiting run needs it decided
    expect(page.locator("#item")).to_contain_text("Nothing left for you to review. 1 item is")

    with ReviewQueue.open(run_dir) as queue:
        decisions = [(d.item, d.reviewer, d.action, d.reason, d.edit) for d in queue.decisions()]
        assert decisions == [
            (items[0].id, "alice", "accept", None, None),
            (items[1].id, "alice", "reject", "duplicate", None),
            (
                items[2].id,
                "alice",
                "edit",
                None,
                {"completion": items[2].fields["completion"] + " (checked)"},
            ),
            (items[3].id, "alice", "skip", None, None),
        ]
        assert [queue.outcome(i.id).status for i in items] == [
            "accept",
            "reject",
            "edit",
            "pending",
        ]
        check = queue.audit.verify(queue.audit_entries())
        assert check.ok, check.problem
        assert queue.audit_entries() == before + 4 == check.entries
        logged = [e for e in queue.audit.entries() if e["event"] == "decision"]
        assert [(e["item"], e["action"], e["reviewer"]) for e in logged] == [
            (i.id, a, "alice")
            for i, a in zip(items, ("accept", "reject", "edit", "skip"), strict=True)
        ]


def test_an_adjudicator_settles_a_disputed_item(
    runs: Path, server: tuple[str, str], page: Page
) -> None:
    run_dir = make_run(runs)
    disputed = Item.new(
        "rationale",
        "star",
        1,
        {"prompt": "3+4=", "completion": "Answer 7"},
        editable=("completion",),
        needed=2,
    )
    queue_items(run_dir, [disputed])
    with ReviewQueue.open(run_dir) as queue:
        queue.decide(disputed.id, "alice", "accept")
        queue.decide(disputed.id, "bob", "reject", "incorrect")
        assert queue.outcome(disputed.id).status == "disputed"
    base, _ = server
    page.goto(f"{base}/runs/{run_dir.name}/adjudicate?reviewer=carol")
    expect(page.locator("#item")).to_have_attribute("data-item", disputed.id)
    expect(page.locator("#item .decision")).to_have_text(
        ["alice: accept", "bob: reject (incorrect)"]
    )
    page.keyboard.press("a")
    expect(page.locator("#item")).to_contain_text("No disputed items left")
    with ReviewQueue.open(run_dir) as queue:
        last = queue.decisions(disputed.id)[-1]
        assert (last.reviewer, last.action, last.role) == ("carol", "accept", "adjudicate")
        assert queue.outcome(disputed.id).status == "accept"
        assert queue.counts()["disputed"] == 0


def test_model_text_is_shown_as_text_never_run(
    runs: Path, server: tuple[str, str], page: Page
) -> None:
    run_dir = make_run(runs, arms=(f"arm {IMAGE}",))
    hostile = rationale(f"2+2= {SCRIPT}", f"Answer 4 {IMAGE}", model=SCRIPT)
    queue_items(run_dir, [hostile])
    base, _ = server
    for path in (f"/runs/{run_dir.name}/review", f"/runs/{run_dir.name}", "/"):
        page.goto(base + path)
        page.wait_for_load_state("load")
        assert page.evaluate("typeof window.__pwned") == "undefined", path
        assert page.locator("img[src='x']").count() == 0, path
    page.goto(f"{base}/runs/{run_dir.name}/review")
    fields = page.locator("#item pre.text")
    expect(fields.nth(0)).to_have_text(f"2+2= {SCRIPT}")
    expect(fields.nth(1)).to_have_text(f"Answer 4 {IMAGE}")
    expect(page.locator("#side")).to_contain_text(SCRIPT)
    page.goto(f"{base}/runs/{run_dir.name}")
    expect(page.locator("#metrics")).to_contain_text(f"arm {IMAGE}")
    drawn = page.locator("#updated").inner_text()
    expect(page.locator("#updated")).not_to_have_text(drawn)  # a refresh drew the table again
    assert page.evaluate("typeof window.__pwned") == "undefined"
    expect(page.get_by_text(f"arm {IMAGE}").first).to_be_visible()


def test_an_item_without_an_editable_field_offers_no_edit(
    runs: Path, server: tuple[str, str], page: Page
) -> None:
    run_dir = make_run(runs, arms=("unreviewed",))
    episode = Item.new(
        "episode",
        "unreviewed",
        1,
        {"moves": "rlrlrlrl", "visits": "#####"},
        provenance={"source": "synthetic", "model": "generation-0"},
    )
    queue_items(run_dir, [episode])
    base, _ = server
    page.goto(f"{base}/runs/{run_dir.name}/review")
    expect(page.locator("#item")).to_have_attribute("data-item", episode.id)
    edit = page.locator("button[data-key='e']")
    expect(edit).to_be_disabled()
    expect(edit).to_have_attribute("title", "this item has no editable field")
    expect(page.locator("#item textarea")).to_have_count(0)
    page.keyboard.press("e")  # the key says why instead of opening an editor
    expect(page.locator("#error")).to_have_text("this item has no editable field")
    expect(page.locator("button[data-key='a']")).to_be_enabled()
