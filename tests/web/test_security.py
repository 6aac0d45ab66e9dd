"""The web app's guards over plain HTTP: the token, writes from elsewhere, path traversal,
malformed bodies and the response headers. Every refusal is a 4xx JSON error, never a 500."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from selfimprove.oversight.queue import ReviewQueue
from tests.web.pages import Answer, make_run, post_json, queue_items, rationale, request


@pytest.fixture(scope="module")
def run_dir(runs: Path) -> Path:
    folder = make_run(runs)
    queue_items(folder, [rationale("1+1=", "Answer 2"), rationale("2+2=", "Answer 4")])
    return folder


def an_error(answer: Answer, status: int) -> str:
    assert answer.status == status, (answer.status, answer.text)
    assert answer.headers["content-type"] == "application/json"
    assert "Traceback" not in answer.text
    message = answer.json()["error"]
    assert isinstance(message, str) and message and "\n" not in message
    return message


def decisions(run_dir: Path) -> list[tuple[str, str]]:
    with ReviewQueue.open(run_dir) as queue:
        return [(d.reviewer, d.action) for d in queue.decisions()]


def test_a_write_needs_the_token_and_then_succeeds(server: tuple[str, str], run_dir: Path) -> None:
    base, token = server
    path = f"/api/runs/{run_dir.name}/decisions"
    with ReviewQueue.open(run_dir) as queue:
        first = queue.next_for("dana")[0]
    decision = {"item": first.id, "action": "accept", "reviewer": "dana"}
    assert "token" in an_error(post_json(base, path, decision, None), 403)
    assert "token" in an_error(post_json(base, path, decision, token[:-1] + "x"), 403)
    assert decisions(run_dir) == []
    answer = post_json(base, path, decision, token)
    assert answer.status == 200, answer.text
    assert answer.json()["decided"]["outcome"] == "accept"
    assert decisions(run_dir) == [("dana", "accept")]


def test_a_write_from_another_origin_or_not_json_is_refused(
    server: tuple[str, str], run_dir: Path
) -> None:
    base, token = server
    path = f"/api/runs/{run_dir.name}/decisions"
    with ReviewQueue.open(run_dir) as queue:
        item = queue.items()[1]
    decision = {"item": item.id, "action": "accept", "reviewer": "erin"}
    an_error(post_json(base, path, decision, token, Origin="http://evil.example"), 403)
    an_error(post_json(base, path, decision, token, Origin="null"), 403)
    form = request(
        base,
        path,
        method="POST",
        body=b"item=x",
        headers={"X-Selfimprove-Token": token, "Content-Type": "application/x-www-form-urlencoded"},
    )
    an_error(form, 415)
    assert ("erin", "accept") not in decisions(run_dir)
    same = post_json(base, path, decision, token, Origin=base)
    assert same.status == 200, same.text


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/../metrics",
        "/api/runs/..%2F..%2Fetc/metrics",
        "/api/runs/%2E%2E/metrics",
        "/runs/..%2f..%2f..%2fetc%2fpasswd",
        "/runs/.hidden",
        "/runs/%2Fetc/review",
        "/runs/a%00b/report",
        "/api/runs/no-such-run-20260101-000000-abcd/metrics",
    ],
)
def test_a_run_id_cannot_leave_the_runs_folder(server: tuple[str, str], path: str) -> None:
    base, token = server
    answer = request(base, path, headers={"X-Selfimprove-Token": token})
    assert 400 <= answer.status < 500, (path, answer.status)
    assert "root:" not in answer.text and "Traceback" not in answer.text


def test_malformed_writes_are_one_line_4xx(server: tuple[str, str], run_dir: Path) -> None:
    base, token = server
    path = f"/api/runs/{run_dir.name}/decisions"
    headers = {"X-Selfimprove-Token": token, "Content-Type": "application/json"}
    broken = request(base, path, method="POST", body=b'{"item": ', headers=headers)
    assert an_error(broken, 422) == "the body is not JSON"
    with ReviewQueue.open(run_dir) as queue:
        item = queue.items()[0].id
    assert "item" in an_error(
        post_json(base, path, {"item": "../x", "action": "accept"}, token), 422
    )
    assert "action" in an_error(
        post_json(base, path, {"item": item, "action": "delete"}, token), 422
    )
    an_error(post_json(base, path, {"item": item, "action": "accept", "extra": 1}, token), 422)
    an_error(post_json(base, path, [1, 2], token), 422)
    missing = post_json(base, path, {"item": "0" * 20, "action": "accept"}, token)
    assert "no item" in an_error(missing, 404)
    reason = post_json(base, path, {"item": item, "action": "reject", "reason": "bad"}, token)
    assert "reason" in an_error(reason, 400)
    edit = post_json(base, path, {"item": item, "action": "edit", "edit": {"prompt": "x"}}, token)
    assert "cannot be edited" in an_error(edit, 400)
    name = post_json(base, path, {"item": item, "action": "accept", "reviewer": "<b>"}, token)
    an_error(name, 422)
    play = post_json(base, "/api/play/connect4", {"moves": [0, 0, 0, 0, 0, 0, 0]}, token)
    assert "not legal" in an_error(play, 400)
    an_error(post_json(base, "/api/play/chess", {"moves": []}, token), 404)


def test_the_token_url_sets_a_strict_cookie_and_every_page_has_the_headers(
    server: tuple[str, str],
) -> None:
    base, token = server
    an_error(request(base, "/"), 403)
    visit = request(base, f"/play/connect4?token={token}")
    assert visit.status == 303 and visit.headers["location"] == "/play/connect4"
    cookie = visit.headers["set-cookie"]
    name = cookie.split("=")[0]
    assert f"={token};" in cookie
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    an_error(request(base, "/?token=wrong"), 403)
    page = request(base, "/play/connect4", headers={"Cookie": f"{name}={token}"})
    assert page.status == 200
    policy = page.headers["content-security-policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy)
    assert nonce and f'<script nonce="{nonce[1]}">' in page.text
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert "http" not in policy  # no source outside the app
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", page.text)
    again = request(base, "/play/connect4", headers={"Cookie": f"{name}={token}"})
    assert again.headers["content-security-policy"] != policy  # a fresh nonce every response


def test_another_host_name_is_refused(server: tuple[str, str]) -> None:
    base, token = server
    rebound = request(base, "/", headers={"X-Selfimprove-Token": token, "Host": "evil.example"})
    an_error(rebound, 403)
    assert request(base, "/", headers={"X-Selfimprove-Token": token}).status == 200


def test_an_items_gold_answer_never_reaches_the_page(server: tuple[str, str], runs: Path) -> None:
    base, token = server
    folder = make_run(runs)
    golden = replace(rationale("5+5=", "Answer 10"), gold="reject")
    queue_items(folder, [golden])
    headers = {"X-Selfimprove-Token": token}
    state = request(base, f"/api/runs/{folder.name}/review", headers=headers).json()
    assert state["item"]["id"] == golden.id and state["item"]["fields"]["completion"] == "Answer 10"
    assert "gold" not in json.dumps(state) and "reject" not in json.dumps(state["item"])
    page = request(base, f"/runs/{folder.name}/review", headers=headers)
    assert page.status == 200 and golden.id in page.text and '"gold"' not in page.text


def test_links_cannot_lead_outside_the_runs_folder(
    server: tuple[str, str], runs: Path, run_dir: Path, tmp_path: Path
) -> None:
    base, token = server
    header = {"X-Selfimprove-Token": token}
    outside = tmp_path / "games-alphazero-20260101-000000-beef"
    outside.mkdir()
    (outside / "run.sqlite").write_bytes((run_dir / "run.sqlite").read_bytes())
    linked = runs / outside.name
    linked.symlink_to(outside, target_is_directory=True)
    try:
        answer = request(base, f"/api/runs/{linked.name}/metrics", headers=header)
        assert 400 <= answer.status < 500, answer.status
        secret = tmp_path / "secret.txt"
        secret.write_text("do not serve me")
        (run_dir / "report.html").symlink_to(secret)
        page = request(base, f"/runs/{run_dir.name}/report", headers=header)
        assert an_error(page, 404) and "do not serve me" not in page.text
    finally:
        linked.unlink()
        (run_dir / "report.html").unlink(missing_ok=True)
    huge = request(base, f"/api/runs/{run_dir.name}/review?after={10**20}", headers=header)
    assert 400 <= huge.status < 500, huge.status


def test_a_reviewer_does_not_see_other_reviews_an_adjudicator_does(
    server: tuple[str, str], runs: Path
) -> None:
    base, token = server
    folder = make_run(runs)
    (ident,) = queue_items(folder, [replace(rationale("3+4=", "Answer 7"), needed=2)])
    with ReviewQueue.open(folder) as queue:
        queue.decide(ident, "bob", "reject", "incorrect", note="bob was here")
    header = {"X-Selfimprove-Token": token}
    shown = request(base, f"/api/runs/{folder.name}/review", headers=header).json()
    assert shown["item"]["id"] == ident and shown["item"]["decisions"] == []
    assert "bob was here" not in json.dumps(shown)
    with ReviewQueue.open(folder) as queue:
        queue.decide(ident, "web", "accept")  # the app's default reviewer: now disputed
    judged = request(base, f"/api/runs/{folder.name}/review?mode=adjudicate", headers=header)
    votes = {d["reviewer"]: d["action"] for d in judged.json()["item"]["decisions"]}
    assert votes == {"bob": "reject", "web": "accept"}
    # adjudicating an item that is not disputed is refused
    (other,) = queue_items(folder, [rationale("5+5=", "Answer 10")])
    body = {"item": other, "action": "accept", "role": "adjudicate"}
    refused = post_json(base, f"/api/runs/{folder.name}/decisions", body, token)
    assert "only a disputed item is adjudicated" in an_error(refused, 400)
