"""Exports of reviewed items: each format holds exactly the items some reviewer decided, each
file parses, an edit's text and a reject's answer come through, and model text (a script
tag) is kept as data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from selfimprove.cli import main
from selfimprove.core.config import ConfigError
from selfimprove.core.store import RunStore
from selfimprove.oversight.exports import export_reviewed, reviewer_uuid
from selfimprove.oversight.queue import Item, ReviewQueue

SCRIPT = '<script>alert("x")</script> & </textarea>'
EDITED = "1+1=2\nso 2"


def _item(text: str, needed: int = 1) -> Item:
    return Item.new(
        "rationale", "star", 3, {"prompt": "1+1=", "completion": text}, ("completion",),
        {"source": "synthetic", "model": "generation-2"},
        {"verifier/passed": True, "verifier/verifier": "answer", "verifier/score": 1.0},
        needed,
    )  # fmt: skip


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    """A queue of six items: accepted (holding a script tag), rejected, edited, disputed,
    only skipped, untouched. The first four are the reviewed ones."""
    accepted, rejected, edited = _item(SCRIPT), _item("1+1=3"), _item("1+1=2")
    disputed, skipped, untouched = _item("x", needed=2), _item("y"), _item("z")
    with ReviewQueue.open(tmp_path) as queue:
        queue.add([accepted, rejected, edited, disputed, skipped, untouched])
        queue.decide(accepted.id, "ann", "accept", note="fine")
        queue.decide(rejected.id, "ann", "skip")
        queue.decide(rejected.id, "bob", "reject", "incorrect")
        queue.decide(edited.id, "ann", "edit", edit={"completion": EDITED})
        queue.decide(disputed.id, "ann", "accept")
        queue.decide(disputed.id, "bob", "reject", "reward_hack")
        queue.decide(skipped.id, "ann", "skip")
    return tmp_path


def _ids(run_dir: Path) -> list[str]:
    with ReviewQueue.open(run_dir) as queue:
        return [item.id for item in queue.items()]


def test_prodigy_lines_carry_the_outcome_as_the_answer(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "reviewed.jsonl"
    assert export_reviewed(run_dir, "prodigy", out) == 4
    lines = out.read_text().splitlines()
    tasks = [json.loads(line) for line in lines]
    ids = _ids(run_dir)
    assert [t["meta"]["id"] for t in tasks] == ids[:4]
    assert [t["answer"] for t in tasks] == ["accept", "reject", "accept", "ignore"]
    accepted, rejected, edited, disputed = tasks
    assert accepted["completion"] == SCRIPT and SCRIPT in accepted["text"]
    assert edited["completion"] == EDITED and EDITED in edited["text"]
    assert edited["meta"]["original"] == {"completion": "1+1=2"}
    assert rejected["_annotator_id"] == "bob" and rejected["sessions"] == ["bob"]
    assert disputed["meta"]["outcome"] == "disputed" and disputed["sessions"] == ["ann", "bob"]
    for task in tasks:
        assert all(isinstance(task[k], int) and -(2**31) <= task[k] < 2**31 for k in _HASHES)
        assert task["meta"]["provenance"]["model"] == "generation-2"
    assert len({t["_input_hash"] for t in tasks}) == 4


_HASHES = ("_input_hash", "_task_hash")


def test_argilla_records_hold_one_response_per_reviewer(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "reviewed.json"
    assert export_reviewed(run_dir, "argilla", out) == 4
    records = json.loads(out.read_text())
    assert [r["external_id"] for r in records] == _ids(run_dir)[:4]
    accepted, rejected, edited, disputed = records
    assert accepted["fields"]["completion"] == SCRIPT
    assert accepted["responses"] == [
        {
            "user_id": reviewer_uuid("ann"),
            "values": {"decision": {"value": "accept"}, "note": {"value": "fine"}},
            "status": "submitted",
        }
    ]
    statuses = {r["user_id"]: r["status"] for r in rejected["responses"]}
    assert statuses == {reviewer_uuid("ann"): "draft", reviewer_uuid("bob"): "discarded"}
    (bob,) = [r for r in rejected["responses"] if r["status"] == "discarded"]
    assert bob["values"] == {"decision": {"value": "reject"}, "reason": {"value": "incorrect"}}
    assert edited["responses"][0]["values"]["edited_completion"] == {"value": EDITED}
    assert len(disputed["responses"]) == 2
    suggestion = {"question_name": "decision", "value": "accept", "agent": "answer", "score": 1.0}
    assert all(r["suggestions"] == [suggestion] for r in records)
    assert accepted["metadata"]["provenance/model"] == "generation-2"
    assert accepted["metadata"]["_reviewers"] == {reviewer_uuid("ann"): "ann"}


def test_labelstudio_tasks_hold_one_annotation_per_decision(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "reviewed.json"
    assert export_reviewed(run_dir, "labelstudio", out) == 4
    tasks = json.loads(out.read_text())
    assert [t["meta"]["id"] for t in tasks] == _ids(run_dir)[:4]
    accepted, rejected, edited, _ = tasks
    assert accepted["data"] == {"prompt": "1+1=", "completion": SCRIPT}
    assert [len(t["annotations"]) for t in tasks] == [1, 2, 1, 2]
    skip, reject = rejected["annotations"]
    assert skip["was_cancelled"] is True and skip["result"] == []
    assert (reject["completed_by"], reject["was_cancelled"]) == ("bob", False)
    assert _values(reject) == {"decision": ["Reject"], "reason": ["incorrect"]}
    assert _values(edited["annotations"][0]) == {
        "decision": ["Accept"], "edited_completion": [EDITED],
    }  # fmt: skip
    assert _values(accepted["annotations"][0]) == {"decision": ["Accept"], "note": ["fine"]}
    assert accepted["annotations"][0]["created_at"].endswith("Z")
    assert {r["to_name"] for a in accepted["annotations"] for r in a["result"]} == {"completion"}
    assert accepted["predictions"][0]["result"][0]["value"] == {"choices": ["Accept"]}


def _values(annotation: dict[str, Any]) -> dict[str, list[str]]:
    return {
        r["from_name"]: r["value"].get("choices") or r["value"].get("text")
        for r in annotation["result"]
    }


@pytest.mark.parametrize("format", ["prodigy", "argilla", "labelstudio"])
def test_a_script_tag_is_written_as_plain_json_data(
    run_dir: Path, tmp_path: Path, format: str
) -> None:
    out = tmp_path / f"reviewed.{format}"
    export_reviewed(run_dir, format, out)
    raw = out.read_text()
    assert SCRIPT.replace('"', '\\"') in raw  # the text as a JSON string, nothing escaped more
    assert not list(tmp_path.glob(".reviewed.*.tmp"))  # the temporary file was renamed


def test_a_queue_without_decisions_exports_nothing_and_a_bad_format_is_refused(
    tmp_path: Path,
) -> None:
    with ReviewQueue.open(tmp_path) as queue:
        queue.add([_item("2")])
    out = tmp_path / "none.json"
    assert export_reviewed(tmp_path, "argilla", out) == 0
    assert json.loads(out.read_text()) == []
    with pytest.raises(ConfigError, match="one of prodigy, argilla, labelstudio"):
        export_reviewed(tmp_path, "csv", tmp_path / "x.csv")


def test_the_export_command_writes_reviewed_items(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = RunStore.create(tmp_path / "runs", "reasoning.star", {}, 0, "test")
    store.close()
    item = _item("1+1=2")
    with ReviewQueue.open(store.run_dir) as queue:
        queue.add([item, _item("1+1=3")])
        queue.decide(item.id, "ann", "reject", "incorrect")
    out = tmp_path / "reviewed.jsonl"
    args = ["--runs-dir", str(tmp_path / "runs"), "export", store.run_dir.name]
    assert main([*args, "--format", "prodigy", "--out", str(out)]) == 0
    assert "1 reviewed items as prodigy" in capsys.readouterr().err
    (task,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert (task["meta"]["id"], task["answer"]) == (item.id, "reject")
