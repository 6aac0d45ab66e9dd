"""The review queue as the web page sees it: an item as JSON (its fields, provenance, signals
and other reviewers' decisions, with a side-by-side diff of every edit), the next item for a
reviewer (or for an adjudicator: the next disputed one), and the progress counts.

Everything here is data for the page's script, which shows it with `textContent` only: item
fields are model-generated text. An item's gold answer is never sent (it scores reviewers).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Literal

from selfimprove.oversight.queue import Item, ReviewDecision, ReviewQueue
from selfimprove.web.runs import finite

Mode = Literal["review", "adjudicate"]
ITEM_ID = r"^[0-9a-f]{20}$"


def side_by_side(before: str, after: str) -> list[tuple[str, str, str]]:
    """Rows `(tag, old line, new line)` of a line diff; tag is difflib's `equal`, `replace`,
    `delete` or `insert`, and a missing side is ''."""
    old, new = before.splitlines(), after.splitlines()
    rows: list[tuple[str, str, str]] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        left, right = old[i1:i2], new[j1:j2]
        for k in range(max(len(left), len(right))):
            rows.append((tag, left[k] if k < len(left) else "", right[k] if k < len(right) else ""))
    return rows


def edit_diffs(fields: Mapping[str, str], edit: Mapping[str, str]) -> list[dict[str, Any]]:
    """One diff per edited field, original on the left."""
    return [
        {"field": name, "rows": side_by_side(fields.get(name, ""), text)}
        for name, text in edit.items()
    ]


def decision_view(item: Item, decision: ReviewDecision) -> dict[str, Any]:
    return {
        "reviewer": decision.reviewer,
        "action": decision.action,
        "reason": decision.reason,
        "note": decision.note,
        "role": decision.role,
        "time": decision.time,
        "diffs": edit_diffs(item.fields, decision.edit) if decision.edit else [],
    }


def item_view(queue: ReviewQueue, item: Item, mode: Mode = "review") -> dict[str, Any]:
    """The item for the page; an adjudicator also sees the newest decision of each reviewer
    (skips included). A reviewer does not: reviews of one item stay independent, or the
    agreement between reviewers would measure who read whom."""
    newest = {d.reviewer: d for d in queue.decisions(item.id)} if mode == "adjudicate" else {}
    view: dict[str, Any] = finite(
        {
            "id": item.id,
            "seq": item.seq,
            "kind": item.kind,
            "arm": item.arm,
            "generation": item.generation,
            "status": item.status,
            "needed": item.needed,
            "fields": item.fields,
            "editable": list(item.editable),
            "provenance": item.provenance,
            "signals": item.signals,
            "decisions": [decision_view(item, d) for d in newest.values()],
        }
    )
    return view


def next_item(queue: ReviewQueue, reviewer: str, mode: Mode, after: int = 0) -> Item | None:
    """Review: the oldest pending item this reviewer has not decided or skipped.
    Adjudicate: the oldest disputed item after position `after` (a skipped one stays
    disputed, so the page moves past it)."""
    if mode == "review":
        found = queue.next_for(reviewer, limit=1)
        return found[0] if found else None
    row = queue.db.execute(
        "SELECT id FROM items WHERE status = 'disputed' AND seq > ? ORDER BY seq LIMIT 1",
        (after,),
    ).fetchone()
    return None if row is None else queue.item(row[0])


def progress(queue: ReviewQueue, reviewer: str) -> dict[str, Any]:
    """`left`: pending items this reviewer has not decided; `decided`: items they decided
    (skips included); `counts`: the queue by status."""
    left = queue.count_for(reviewer)
    (decided,) = queue.db.execute(
        "SELECT COUNT(DISTINCT item) FROM decisions WHERE reviewer = ?", (reviewer,)
    ).fetchone()
    return {"left": int(left), "decided": int(decided), "counts": queue.counts()}


def page_state(queue: ReviewQueue, reviewer: str, mode: Mode, after: int = 0) -> dict[str, Any]:
    """The next item (or None) and the progress, as one JSON object."""
    item = next_item(queue, reviewer, mode, after)
    return {
        "item": None if item is None else item_view(queue, item, mode),
        "progress": progress(queue, reviewer),
    }
