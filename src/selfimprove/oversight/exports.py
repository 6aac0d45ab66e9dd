"""Reviewed items out to the annotation tools people already use (`selfimprove export RUN
--format prodigy|argilla|labelstudio --out FILE`).

An item is exported once some reviewer made a non-skip decision on it. Each format follows
one documented import format, read from the tool's own documentation:

- **prodigy**: JSONL, one annotated task per line, as Prodigy's `db-in` reads and `db-out`
  writes ("Annotation interfaces", the task format): `text` (an item's `text` field, or its
  fields as `name:` blocks), each field also under its own name, `meta` (item id, kind,
  arm, generation, outcome, provenance, signals, and the original of every edited field),
  `_input_hash` / `_task_hash` (signed 32-bit ints derived from the item id, as Prodigy's
  hashes are 32-bit), `_view_id: text`, `answer` from the item's outcome (accept or edit:
  `accept` with the edited text; reject: `reject`; still pending or disputed: `ignore`),
  `_timestamp`, `_annotator_id` / `_session_id` (who decided the outcome) and `sessions`
  (everyone who voted).
- **argilla**: a JSON list of Argilla 1.x `FeedbackRecord`s (`rg.FeedbackRecord(**record)`
  for a `FeedbackDataset`): `fields` (the item's fields, as shown), `metadata` (flat:
  kind, arm, generation, outcome, `provenance/*`, the signals; `_reviewers` maps user ids
  to names and stays hidden from annotators, as Argilla hides keys starting with `_`),
  `suggestions` (the verifier's verdict as a suggestion for the `decision` question, with
  its score and the verifier as agent), `responses` (one per reviewer, their newest
  decision: `values` by question, `status` submitted for accept and edit, discarded for a
  reject, draft for a skip), `external_id` (the item id). Argilla wants a UUID as
  `user_id`, so each reviewer's is `uuid5` of their name. The dataset's questions:
  `decision` (label: accept, reject), `reason` (label: the reason codes), `note` (text) and
  `edited_<field>` (text) for each editable field.
- **labelstudio**: a JSON list of Label Studio tasks with annotations ("Label Studio JSON
  format of annotated tasks"): `data` (the fields), `meta`, `annotations` (one per decision,
  oldest first: `result` holds a `choices` result `decision` Accept / Reject, a `choices`
  result `reason`, a `textarea` result `edited_<field>` for each edited field and one `note`;
  `was_cancelled` for a skip, `ground_truth` for an adjudication, `completed_by`,
  `created_at`), and `predictions` (the verifier's verdict). Label Studio documents
  `completed_by` as a user id of its own; ours are reviewer names, which its import does
  not know, so map them to users (or drop the key) before importing into a server. The
  labeling config these results name, for a STaR run (`prompt`, editable `completion`):

      <View>
        <Text name="prompt" value="$prompt"/>
        <Text name="completion" value="$completion"/>
        <Choices name="decision" toName="completion">
          <Choice value="Accept"/><Choice value="Reject"/>
        </Choices>
        <Choices name="reason" toName="completion">
          <Choice value="harmful"/> ... <Choice value="other"/>
        </Choices>
        <TextArea name="edited_completion" toName="completion"/>
        <TextArea name="note" toName="completion"/>
      </View>

Text fields are model output: they are written as JSON string values (every non-ASCII
character escaped), never interpreted, so a `<script>` in a field stays data. Non-finite
numbers become null (JSON has no NaN). The file is written under a temporary name and
renamed, so a reader never sees half of it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from selfimprove.core.config import ConfigError
from selfimprove.oversight.queue import Item, Outcome, ReviewDecision, ReviewQueue, outcome_of

FORMATS = ("prodigy", "argilla", "labelstudio")
ANSWERS = {"accept": "accept", "edit": "accept", "reject": "reject"}  # any other: ignore
ARGILLA_STATUS = {"accept": "submitted", "edit": "submitted", "reject": "discarded"}
REVIEWER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "selfimprove:reviewer")


@dataclass(frozen=True)
class ReviewedItem:
    """An item with every decision on it (oldest first) and its outcome."""

    item: Item
    decisions: tuple[ReviewDecision, ...]
    outcome: Outcome

    def newest(self) -> dict[str, ReviewDecision]:
        """reviewer -> their newest decision (a skip included)."""
        return {d.reviewer: d for d in self.decisions}

    def voters(self) -> list[str]:
        """Reviewers whose newest decision is not a skip, in name order."""
        return sorted(name for name, d in self.newest().items() if d.action != "skip")

    def shown_fields(self) -> dict[str, str]:
        """The fields with the outcome's edit applied."""
        if self.outcome.status == "edit" and self.outcome.edit:
            return {**self.item.fields, **self.outcome.edit}
        return dict(self.item.fields)


def reviewed_items(queue: ReviewQueue) -> list[ReviewedItem]:
    """Items with at least one non-skip decision, in queue order."""
    by_item: dict[str, list[ReviewDecision]] = {}
    for decision in queue.decisions():
        by_item.setdefault(decision.item, []).append(decision)
    reviewed = []
    for item in queue.items():
        decisions = by_item.get(item.id, [])
        if any(d.action != "skip" for d in decisions):
            outcome = outcome_of(decisions, item.needed)
            reviewed.append(ReviewedItem(item, tuple(decisions), outcome))
    return reviewed


def export_reviewed(run_dir: Path, format: str, out: Path) -> int:
    """Write a run's reviewed items to `out` in `format`; returns how many."""
    if format not in FORMATS:
        raise ConfigError(f"--format {format!r}: one of {', '.join(FORMATS)}")
    with ReviewQueue.open(run_dir, create=False) as queue:
        reviewed = reviewed_items(queue)
    if format == "prodigy":
        text = "".join(_json(prodigy_task(r)) + "\n" for r in reviewed)
    elif format == "argilla":
        text = _json_list([argilla_record(r) for r in reviewed])
    else:
        text = _json_list([labelstudio_task(r) for r in reviewed])
    _write_atomically(out, text)
    return len(reviewed)


# -- Prodigy ----------------------------------------------------------------------------


def prodigy_task(reviewed: ReviewedItem) -> dict[str, Any]:
    item, outcome = reviewed.item, reviewed.outcome
    fields = reviewed.shown_fields()
    voters = reviewed.voters()
    annotator = ",".join(outcome.deciders or voters)
    task: dict[str, Any] = {
        "text": fields["text"] if "text" in fields else _joined(fields),
        "meta": {
            **_item_meta(reviewed),
            "original": {name: item.fields.get(name, "") for name in outcome.edit or {}},
        },
        "_input_hash": _int32("input", item.id),
        "_task_hash": _int32("task", item.id),
        "_view_id": "text",
        "answer": ANSWERS.get(outcome.status, "ignore"),
        "_timestamp": int(max(d.time for d in reviewed.decisions)),
        "_annotator_id": annotator,
        "_session_id": annotator,
        "sessions": voters,
    }
    for name, value in fields.items():  # each field under its own name, where it is free
        if not name.startswith("_") and name not in task:
            task[name] = value
    return task


def _joined(fields: Mapping[str, str]) -> str:
    return "\n\n".join(f"{name}:\n{value}" for name, value in fields.items())


def _int32(salt: str, ident: str) -> int:
    """A signed 32-bit int from the item id (Prodigy's hashes are signed 32-bit)."""
    value = int(hashlib.sha256(f"{salt}:{ident}".encode()).hexdigest()[:8], 16)
    return value - 2**32 if value >= 2**31 else value


# -- Argilla ----------------------------------------------------------------------------


def argilla_record(reviewed: ReviewedItem) -> dict[str, Any]:
    item = reviewed.item
    newest = reviewed.newest()
    metadata = {
        "kind": item.kind,
        "arm": item.arm,
        "generation": item.generation,
        "outcome": reviewed.outcome.status,
        **{f"provenance/{k}": v for k, v in item.provenance.items()},
        **item.signals,
        "_reviewers": {reviewer_uuid(name): name for name in sorted(newest)},
    }
    return {
        "external_id": item.id,
        "fields": dict(item.fields),
        "metadata": {k: v for k, v in _finite(metadata).items() if v is not None},
        "suggestions": _suggestions(item.signals),
        "responses": [_response(newest[name]) for name in sorted(newest)],
    }


def reviewer_uuid(name: str) -> str:
    """The UUID Argilla gets for a reviewer: the same name, the same id, in every export."""
    return str(uuid.uuid5(REVIEWER_NAMESPACE, name))


def _response(decision: ReviewDecision) -> dict[str, Any]:
    values: dict[str, dict[str, str]] = {}
    if decision.action != "skip":
        values["decision"] = {"value": "reject" if decision.action == "reject" else "accept"}
    if decision.reason:
        values["reason"] = {"value": decision.reason}
    for name, text in (decision.edit or {}).items():
        values[f"edited_{name}"] = {"value": text}
    if decision.note:
        values["note"] = {"value": decision.note}
    return {
        "user_id": reviewer_uuid(decision.reviewer),
        "values": values,
        "status": ARGILLA_STATUS.get(decision.action, "draft"),
    }


def _suggestions(signals: Mapping[str, Any]) -> list[dict[str, Any]]:
    passed = signals.get("verifier/passed")
    if not isinstance(passed, bool):
        return []  # nothing checked the item: no suggestion
    suggestion: dict[str, Any] = {
        "question_name": "decision",
        "value": "accept" if passed else "reject",
        "agent": str(signals.get("verifier/verifier", "verifier")),
    }
    score = signals.get("verifier/score")
    if isinstance(score, int | float) and 0 <= score <= 1:  # Argilla's scores are 0..1
        suggestion["score"] = float(score)
    return [suggestion]


# -- Label Studio -----------------------------------------------------------------------


def labelstudio_task(reviewed: ReviewedItem) -> dict[str, Any]:
    item = reviewed.item
    target = item.editable[0] if item.editable else next(reversed(item.fields), "text")
    task: dict[str, Any] = {
        "data": dict(item.fields),
        "meta": _item_meta(reviewed),
        "annotations": [_annotation(d, target) for d in reviewed.decisions],
    }
    passed = item.signals.get("verifier/passed")
    if isinstance(passed, bool):
        prediction: dict[str, Any] = {
            "model_version": str(item.signals.get("verifier/verifier", "verifier")),
            "result": [_result("verifier-decision", "decision", target, "choices", _label(passed))],
        }
        score = item.signals.get("verifier/score")
        if isinstance(score, int | float) and math.isfinite(score):
            prediction["score"] = float(score)
        task["predictions"] = [prediction]
    return task


def _annotation(decision: ReviewDecision, target: str) -> dict[str, Any]:
    key = f"d{decision.seq}"
    result = []
    if decision.action != "skip":
        accepted = decision.action != "reject"
        result.append(_result(f"{key}-decision", "decision", target, "choices", _label(accepted)))
    if decision.reason:
        result.append(_result(f"{key}-reason", "reason", target, "choices", decision.reason))
    for name, text in (decision.edit or {}).items():
        result.append(_result(f"{key}-edit-{name}", f"edited_{name}", name, "textarea", text))
    if decision.note:
        result.append(_result(f"{key}-note", "note", target, "textarea", decision.note))
    when = _iso(decision.time)
    return {
        "result": result,
        "was_cancelled": decision.action == "skip",
        "ground_truth": decision.role == "adjudicate",
        "completed_by": decision.reviewer,
        "created_at": when,
        "updated_at": when,
    }


def _label(accepted: bool) -> str:
    return "Accept" if accepted else "Reject"


def _result(ident: str, control: str, target: str, kind: str, value: str) -> dict[str, Any]:
    """One Label Studio result: a `choices` pick or a `textarea` text, made by hand."""
    key = "choices" if kind == "choices" else "text"
    return {
        "id": ident,
        "from_name": control,
        "to_name": target,
        "type": kind,
        "value": {key: [value]},
        "origin": "manual",
    }


def _iso(seconds: float) -> str:
    """Label Studio's timestamps: ISO 8601 in UTC with a `Z`."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


# -- shared -----------------------------------------------------------------------------


def _item_meta(reviewed: ReviewedItem) -> dict[str, Any]:
    item = reviewed.item
    return {
        "id": item.id,
        "kind": item.kind,
        "arm": item.arm,
        "generation": item.generation,
        "outcome": reviewed.outcome.status,
        "provenance": item.provenance,
        "signals": item.signals,
    }


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinity replaced by None (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_finite(v) for v in value]
    return value


def _json(value: Any) -> str:
    return json.dumps(_finite(value), ensure_ascii=True, allow_nan=False)


def _json_list(records: Sequence[Any]) -> str:
    """A JSON list with one record a line: valid JSON that still diffs line by line."""
    if not records:
        return "[]\n"
    return "[\n" + ",\n".join(_json(r) for r in records) + "\n]\n"


def _write_atomically(out: Path, text: str) -> None:
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="ascii") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
