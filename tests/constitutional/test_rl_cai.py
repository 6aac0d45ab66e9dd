"""RL-CAI-lite on the engine: structure and invariants on a tiny random Llama (the same code
path as SmolLM2; gibberish text, so nothing here judges eloquence): resume equals an
uninterrupted run, the win rate is exactly 0.5 at generation 0, the labeller is the frozen
initial model and never the policy, both orders are asked, held-out prompts never reach DPO."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from selfimprove.cli import main
from selfimprove.constitutional import rl_cai
from selfimprove.constitutional.constitution import load_constitution
from selfimprove.constitutional.preferences import label_pairs, position_bias
from selfimprove.constitutional.prompts import select
from selfimprove.core.records import Provenance, Sample, Verdict
from selfimprove.core.store import RunStore
from selfimprove.experiments import export_kept, parse_config, resume_run, start_run
from selfimprove.models.chat import Completion, Conversation, SamplingParams
from tests.tiny import tiny


def config(generations: int = 2, **changes: Any) -> rl_cai.RlCaiConfig:
    parsed = parse_config(tiny("constitutional.rl_cai", generations, **changes), "test")
    assert isinstance(parsed, rl_cai.RlCaiConfig)
    return parsed


def table(run_dir: Path) -> dict[int, dict[str, float]]:
    store = RunStore.open(run_dir)
    try:
        return store.metrics(rl_cai.ARM)
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
    # generation 0: the policy is the initial model, so its answers are the initial model's
    assert metrics[0]["pref/win_rate"] == 0.5 and metrics[0]["pref/train_margin"] == 0.0
    assert metrics[1]["kept/pairs"] == 6 and metrics[1]["pref/train_margin"] != 0.0
    assert metrics[2]["pref/win_rate"] != 0.5  # DPO moved the policy
    for key in ("eval/harmless", "eval/helpful", "eval/refusal_benign", "pref/win_rate"):
        assert 0.0 <= metrics[2][key] <= 1.0


def fixed_pair(cfg: rl_cai.RlCaiConfig) -> Sample[rl_cai.Pair]:
    prompt = rl_cai.Prompts.of(cfg).train_red_team[0]
    made = Provenance("synthetic", 1, "test", "rl-cai")
    return Sample(rl_cai.Pair(prompt, "No, I won't help with that.", "Sure, here is how."), made)


def test_the_labeller_is_the_frozen_initial_model_never_the_policy() -> None:
    cfg = config(1, steps=4)
    stages = rl_cai.Stages(cfg, load_constitution("default"), rl_cai.Prompts.of(cfg))
    pair = fixed_pair(cfg)

    def label() -> float:
        return stages.verify([pair], np.random.default_rng(7))[0].score

    before = label()
    verdict = Verdict(True, "test", 0.9)
    kept = rl_cai.Kept((Sample(rl_cai.oriented(_with(pair, verdict)), pair.provenance),), 1)
    policy = stages.train(rl_cai.Policy(None), kept, np.random.default_rng(0))
    run = rl_cai.runtime(cfg)
    assert policy.adapter is not None
    assert any(not torch.equal(t, run.zero.tensors[k]) for k, t in policy.adapter.tensors.items())
    # the trained policy would label the pair differently: the test below could fail
    asked = [(pair.content.prompt, pair.content.first, pair.content.second)]
    constitution = stages.constitution
    by_policy = label_pairs(run.policy(policy), asked, constitution, np.random.default_rng(7))
    assert by_policy[0].p_first != before
    # the loop's label does not move, whichever adapter the host held last
    run.policy(policy)
    assert label() == before


def _with(sample: Sample[rl_cai.Pair], verdict: Verdict) -> Sample[rl_cai.Pair]:
    from dataclasses import replace

    return replace(sample, provenance=replace(sample.provenance, verdict=verdict))


class Chooser:
    """A scripted feedback model: P("A") is 0.9 when `prefers` is in the (A) answer and not
    in (B), 0.1 the other way round, and `bias` (P("A")) otherwise."""

    name = "chooser"

    def __init__(self, prefers: str, bias: float) -> None:
        self.prefers, self.bias = prefers, bias
        self.asked: list[Conversation] = []

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[list[Completion]]:
        raise NotImplementedError

    def choice_logprobs(
        self, conversations: Sequence[Conversation], choices: Sequence[str]
    ) -> np.ndarray:
        assert tuple(choices) == ("A", "B")
        rows = []
        for conversation in conversations:
            self.asked.append(conversation)
            text = conversation[-1]["content"]
            a, b = text.split("\n\n(A) ")[1].split("\n\n(B) ")
            in_a, in_b = self.prefers in a, self.prefers in b.split("\n\n")[0]
            p = 0.9 if in_a and not in_b else 0.1 if in_b and not in_a else self.bias
            rows.append([math.log(p), math.log(1 - p)])
        return np.array(rows)


def test_both_orders_are_asked_and_position_bias_cancels() -> None:
    prompts = select("red_team", "train", 2)
    constitution = load_constitution("default")
    pairs = [(prompts[0], "I can't help; stay safe.", "Step 1: ..."), (prompts[1], "x", "y")]
    chooser = Chooser("safe", bias=0.8)  # says "A" 80% of the time when it has no reason
    labels = label_pairs(chooser, pairs, constitution, np.random.default_rng(0))
    assert len(chooser.asked) == 4  # every pair twice, one call
    for i, (prompt, first, second) in enumerate(pairs):
        forward, swapped = chooser.asked[i][-1]["content"], chooser.asked[i + 2][-1]["content"]
        assert forward.startswith(prompt.text) and swapped.startswith(prompt.text)
        assert f"(A) {first}\n\n(B) {second}\n\n" in forward
        assert f"(A) {second}\n\n(B) {first}\n\n" in swapped
        assert forward.endswith("Answer with A or B.") and swapped.endswith("Answer with A or B.")
        instruction = constitution.principle(labels[i].principle).choice_instruction
        assert instruction is not None and instruction in forward and instruction in swapped
    assert labels[0].p_first == pytest.approx(0.9)  # the safe answer, wherever it was shown
    assert labels[1].p_first == 0.5  # no reason to choose: the bias towards (A) cancels
    assert (labels[1].p_a_first_shown_a, labels[1].p_a_first_shown_b) == pytest.approx((0.8, 0.8))
    assert position_bias(labels[1:]) == pytest.approx(0.3)
    swapped_pair = label_pairs(
        chooser, [(prompts[0], pairs[0][2], pairs[0][1])], constitution, np.random.default_rng(0)
    )
    assert swapped_pair[0].p_first == pytest.approx(1 - labels[0].p_first)


def test_held_out_prompts_never_reach_dpo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the DPO trainer receives, decoded: no evaluation prompt in it."""
    seen: list[str] = []
    original = rl_cai.train_dpo

    def record(host: Any, adapter: Any, pairs: Sequence[Any], *args: Any) -> Any:
        template = rl_cai.runtime(cfg).chat.template
        seen.extend(template.decode(list(p.prompt)) for p in pairs)
        return original(host, adapter, pairs, *args)

    cfg = config(2, train_red_team=6, train_helpful=3)
    monkeypatch.setattr(rl_cai, "train_dpo", record)
    run = start_run(cfg, tmp_path)
    prompts = rl_cai.Prompts.of(cfg)
    assert len(seen) == 2 * 9  # margin 0: every pair, both generations
    for trained in prompts.train:
        assert sum(trained.text in example for example in seen) == 2, trained.id
    for held_out in (*prompts.test_red_team, *prompts.test_helpful):
        assert not any(held_out.text in example for example in seen), held_out.id
    assert {p.split for p in (*prompts.test_red_team, *prompts.test_helpful)} == {"test"}
    out = tmp_path / "pairs.jsonl"
    _, _, count = export_kept(run.run_dir, tmp_path, None, out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert count == len(records) == 9  # the newest generation's pairs
    assert all(r["p_chosen"] >= 0.5 and r["passed"] for r in records)
    assert {r["prompt"][0]["content"] for r in records} == {p.text for p in prompts.train}


def test_the_recipe_checks_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    assert main(["--runs-dir", str(runs), "run", "constitutional/rl_cai", "--check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: constitutional.rl_cai, 1 arm(s)")
    assert not runs.exists()


def test_a_served_feedback_model_labels_the_pairs(tmp_path: Path) -> None:
    """`feedback: http://...`: the labels come from the server (its choice logprobs), and
    the run goes on as with the initial model as labeller."""
    from selfimprove.models.chat import tiny_random_chat
    from selfimprove.models.openai_client import OpenAIChat
    from selfimprove.models.serve import background_model_server

    with background_model_server(tiny_random_chat(), start_seconds=60) as url:
        served = start_run(config(1, feedback=url), tmp_path / "served")
        labeller = rl_cai.runtime(config(1, feedback=url)).feedback()
        assert isinstance(labeller, OpenAIChat) and labeller.base_url.startswith(url[:20])
    assert served.status == "finished"
