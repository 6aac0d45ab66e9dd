"""SL-CAI on the engine: structure and invariants on a tiny random Llama (the same code path
as SmolLM2; gibberish text, so nothing here judges eloquence): every revision linked to its
critique and principle, held-out prompts never trained on, resume equals an uninterrupted
run, the chain's rounds and "no change needed"."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from selfimprove.constitutional import sl_cai
from selfimprove.constitutional.chains import Budget, Chain, no_change_needed, revise_round
from selfimprove.constitutional.constitution import load_constitution
from selfimprove.constitutional.prompts import select
from selfimprove.core.store import RunStore
from selfimprove.experiments import export_kept, parse_config, resume_run, start_run
from selfimprove.models.chat import Completion, Conversation, SamplingParams
from selfimprove.models.lora import AdapterHost
from tests.tiny import tiny


def config(generations: int = 2, **changes: Any) -> sl_cai.SlCaiConfig:
    parsed = parse_config(tiny("constitutional.sl_cai", generations, **changes), "test")
    assert isinstance(parsed, sl_cai.SlCaiConfig)
    return parsed


def table(run_dir: Path) -> dict[int, dict[str, float]]:
    store = RunStore.open(run_dir)
    try:
        return store.metrics("sl-cai")
    finally:
        store.close()


def test_resume_equals_an_uninterrupted_run_and_the_seed_decides(tmp_path: Path) -> None:
    whole = start_run(config(), tmp_path / "whole")
    again = start_run(config(), tmp_path / "again")
    cut = start_run(config(), tmp_path / "cut", stop_after=1)
    assert cut.status == "stopped"
    assert resume_run(cut.run_dir).status == "finished"
    metrics = table(whole.run_dir)
    assert sorted(metrics) == [0, 1, 2]
    assert table(cut.run_dir) == metrics == table(again.run_dir)
    # the revision curve is measured at generation 0 on held-out prompts
    assert {"eval/harmless_revision_0", "eval/harmless_revision_1"} <= set(metrics[0])
    assert metrics[0]["eval/harmless_revision_0"] == metrics[0]["eval/harmless"]
    for key in ("eval/harmless", "eval/helpful", "eval/refusal_benign", "val/pass"):
        assert 0.0 <= metrics[2][key] <= 1.0


def test_every_kept_revision_is_linked_to_its_critique_and_principle(tmp_path: Path) -> None:
    plain = ["no_compliance", "answers_question"]  # text checkers: the export re-checks them
    run_config = config(1, revisions=2, train_red_team=6, keep="all", verifiers=plain)
    run = start_run(run_config, tmp_path)
    out = tmp_path / "kept.jsonl"
    _, _, count = export_kept(run.run_dir, tmp_path, None, out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == count == 6 + 2  # keep all: one per red-team and helpful prompt
    constitution = load_constitution("default")
    red = [r for r in records if r["kind"] == "red_team"]
    for record in records:
        chain = record["chain"]
        assert record["init_prompt"] == record["prompt"] == chain["prompt"]
        assert record["init_response"] == chain["answer"]
        assert record["messages"][-1] == {
            "role": "assistant",
            "content": record["revision_response"],
        }
        assert record["principles"] == [s["principle"] for s in chain["steps"]]
        assert record["revision"] == len(chain["steps"])  # provenance counts the rounds
        for step in chain["steps"]:
            principle = constitution.principle(step["principle"])
            assert step["critique_request"] == principle.critique_request
            assert step["revision_request"] == principle.revision_request
        if chain["steps"]:
            last = chain["steps"][-1]
            assert record["critic_response"] == last["critique"]
            assert record["critic_prompt"] == last["critique_request"]
        verified = [v for k, v in record["checks"].items() if k in run_config.verifiers]
        assert record["passed"] == all(verified)  # the verdict, re-checked
    assert len(red) == 6 and all(len(r["chain"]["steps"]) == 2 for r in red)  # 2 rounds each


def test_held_out_prompts_are_never_trained_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the trainer receives, decoded: no evaluation or validation prompt in it."""
    seen: list[str] = []
    original = AdapterHost.train_completions

    def record(self: Any, adapter: Any, examples: Sequence[Any], *args: Any) -> Any:
        template = sl_cai.runtime(cfg).chat.template
        seen.extend(template.decode(list(prompt)) for prompt, _ in examples)
        return original(self, adapter, examples, *args)

    cfg = config(2, train_red_team=8, train_helpful=4, revisions=1, keep="all")
    monkeypatch.setattr(AdapterHost, "train_completions", record)
    start_run(cfg, tmp_path)
    assert seen, "nothing was trained on"
    prompts = sl_cai.Prompts.of(cfg)
    trained = {p.text for p in (*prompts.train_red_team, *prompts.train_helpful)}
    assert any(text in example for example in seen for text in trained)
    for held_out in (*prompts.test_red_team, *prompts.test_helpful, *prompts.validation):
        assert not any(held_out.text in example for example in seen), held_out.id
    assert {p.split for p in (*prompts.test_red_team, *prompts.test_helpful)} == {"test"}
    assert not {p.id for p in prompts.validation} & {
        p.id for p in (*prompts.train_red_team, *prompts.train_helpful)
    }


class Scripted:
    """A chat model that answers from a script (critiques and revisions by position)."""

    name = "scripted"

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.asked: list[Conversation] = []

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[list[Completion]]:
        out = []
        for conversation in conversations:
            self.asked.append(conversation)
            out.append([Completion(self.replies.pop(0), "stop", 1)])
        return out

    def choice_logprobs(
        self, conversations: Sequence[Conversation], choices: Sequence[str]
    ) -> np.ndarray:
        raise NotImplementedError


def test_a_critique_that_needs_no_change_skips_the_revision() -> None:
    prompts = select("red_team", "train", 2)
    chains = [Chain(p, "first answer") for p in prompts]
    chat = Scripted(["No changes are needed.", "It gives details.", "A safer answer."])
    budget = Budget(8, 8, 0.0)
    revised = revise_round(
        chat, chains, load_constitution("default"), budget, np.random.default_rng(0)
    )
    assert [c.revisions for c in revised] == [1, 1]
    assert not revised[0].steps[0].changed and revised[0].final == "first answer"
    assert revised[1].steps[0].changed and revised[1].final == "A safer answer."
    # the revision request came after the critique, in the paper's order
    last = chat.asked[-1]
    assert [m["role"] for m in last] == ["user", "assistant", "user", "assistant", "user"]
    assert last[3]["content"] == "It gives details."
    assert no_change_needed("no critique needed") and not no_change_needed("it needs changes")


def test_the_whole_loop_runs_against_an_openai_compatible_server(tmp_path: Path) -> None:
    """`selfimprove serve-model`'s server (a tiny random Llama behind it, on 127.0.0.1) writes
    every answer, critique and revision; provenance names it; the local model is trained."""
    from selfimprove.models.chat import tiny_random_chat
    from selfimprove.models.serve import background_model_server

    with background_model_server(tiny_random_chat(), start_seconds=60) as url:
        run = start_run(config(1, generator=url, keep="all", revisions=1), tmp_path)
    assert run.status == "finished"
    store = RunStore.open(run.run_dir)
    rows = [r for r in store.provenance("sl-cai", 1) if r.source == "synthetic"]
    store.close()
    assert rows and {r.model for r in rows} == {"generator:tiny-random"}
    assert {r.revision for r in rows} == {0, 1}  # red-team chains revised once, helpful not
    out = tmp_path / "kept.jsonl"
    _, _, count = export_kept(run.run_dir, tmp_path, None, out)
    assert count == 4 + 2


def test_a_generator_server_that_is_down_is_one_line_before_any_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from selfimprove.cli import main

    with socket.socket() as sock:  # a free port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["--runs-dir", str(tmp_path), "run", "constitutional/sl_cai_quick", "--set"]
    code = main([*args, f"generator=http://127.0.0.1:{port}/v1", "--set", "model=tiny-random"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and f"127.0.0.1:{port}" in err
    assert list(tmp_path.iterdir()) == []


def test_a_revision_that_repeats_its_critique_fails_not_critique() -> None:
    from selfimprove.constitutional.chains import Step, copies_critique
    from selfimprove.constitutional.checkers import comments_on_a_response

    prompt = select("red_team", "train", 1)[0]
    critique = "The response is not a complete answer to the question and it is harmful."
    copied = Chain(prompt, "x", (Step("harm", "", "", critique, critique + " Sorry.", True),))
    rewritten = Chain(
        prompt, "x", (Step("harm", "", "", critique, "I won't help with that, sorry.", True),)
    )
    unchanged = Chain(prompt, "x", (Step("harm", "", "", critique, "x", False),))
    assert copies_critique(copied) and not copies_critique(rewritten)
    assert not copies_critique(unchanged)  # "no change needed": nothing was written
    verifiers = ("no_compliance", "not_critique")
    assert not sl_cai.verdict_of(copied, verifiers).passed
    assert "not_critique" in sl_cai.verdict_of(copied, verifiers).reason
    assert sl_cai.verdict_of(rewritten, verifiers).passed
    assert sl_cai.verdict_of(copied, ("no_compliance",)).passed  # only when asked for
    # the held-out meter reads the first sentence's subject, not the critique
    assert comments_on_a_response(critique)
    assert not comments_on_a_response("I won't help with that. The response would be harmful.")
    with pytest.raises(ValueError, match="no training checker 'not_a_checker'"):
        config(1, verifiers=["not_a_checker"])


def test_a_review_gate_holds_revisions_for_people_and_trains_on_their_edit(
    tmp_path: Path,
) -> None:
    from selfimprove.oversight.queue import ReviewQueue

    reviewed = config(1, keep="all", revisions=1, review={"unreviewed": "wait"})
    result = start_run(reviewed, tmp_path)
    assert result.status == "waiting"
    with ReviewQueue.open(result.run_dir) as queue:
        pending = queue.items("pending")
        # everything synthetic between verify and curate: first answers and revisions (an
        # item's id is a hash of its fields, so identical texts are one item)
        assert 4 + 2 <= len(pending) <= 2 * 4 + 2
        red = [i for i in pending if i.fields["critique"]]
        assert red and set(red[0].fields) == {"prompt", "answer", "critique", "revision"}
        assert red[0].editable == ("revision",)
        for item in pending:
            if item is red[0]:
                queue.decide(item.id, "ann", "edit", edit={"revision": "I will not help."})
            else:
                queue.decide(item.id, "ann", "accept")
    assert resume_run(result.run_id, tmp_path).status == "finished"
    out = tmp_path / "kept.jsonl"
    export_kept(result.run_dir, tmp_path, None, out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    edited = [r for r in records if r["review"] == "edited"]
    assert len(edited) == 1 and edited[0]["revision_response"] == "I will not help."
    assert edited[0]["principles"][-1] == "reviewer"
