"""E9: the bigram model's sampler and scoring on hand-made models, and the study's targets on
a short run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selfimprove.collapse.ngram import Bigram, Sampler, count_bigrams, held_out_nll, nucleus
from selfimprove.core.store import RunStore
from selfimprove.experiments import claims_for, load_config, start_run
from tests.conftest import CONFIGS


def test_nucleus_keeps_the_smallest_top_set_reaching_p_in_each_row() -> None:
    weights = np.array([5, 3, 2, 1, 1, 8])
    rows = np.array([0, 0, 0, 1, 1, 2])
    full = nucleus(weights, rows, 1.0, 1.0)
    assert full == pytest.approx([0.5, 0.3, 0.2, 0.5, 0.5, 1.0])
    cut = nucleus(weights, rows, 1.0, 0.7)  # row 0: 0.5 < 0.7, then 0.5 + 0.3 >= 0.7: stop
    assert cut == pytest.approx([5 / 8, 3 / 8, 0.0, 0.5, 0.5, 1.0])
    sharp = nucleus(weights, rows, 0.5, 1.0)  # p^(1/tau) = squared counts, renormalized
    assert sharp[:3] == pytest.approx(np.array([25, 9, 4]) / 38)


def test_sampler_draws_each_successor_at_its_probability() -> None:
    # vocabulary of 3; word 0 -> 1 (3 times) or 2 (once); word 1 -> 0; word 2 never followed
    docs = np.array([[0, 1, 0, 1, 0, 1, 0, 2]])
    model = count_bigrams(docs, 3)
    samples = Sampler.of(model, 1.0, 1.0).sample(20000, 2, np.random.default_rng(0))
    after_zero = samples[samples[:, 0] == 0, 1]
    assert np.mean(after_zero == 1) == pytest.approx(0.75, abs=0.02)
    assert np.all(samples[samples[:, 0] == 1, 1] == 0)
    # documents start from the unigram: 4/8 zeros, 3/8 ones, 1/8 twos
    assert np.mean(samples[:, 0] == 0) == pytest.approx(0.5, abs=0.02)


def test_held_out_nll_interpolates_bigram_and_add_one_unigram() -> None:
    model = Bigram(codes=np.array([0 * 2 + 1]), counts=np.array([1]), unigram=np.array([1, 1]))
    # document [0, 1]: first word from the unigram (1 + 1)/(2 + 2); then 0.8 * 1 + 0.2 * 0.5
    nll = held_out_nll(model, np.array([[0, 1]]), 0.8)
    assert nll == pytest.approx(-(np.log(0.5) + np.log(0.9)) / 2)


def test_e9_short_run_collapses_under_replace_and_holds_with_real_data(tmp_path: Path) -> None:
    config = load_config(
        CONFIGS / "collapse" / "ngram.yaml",
        ["generations=5", "train_documents=3000"],
    )
    store = RunStore.open(start_run(config, tmp_path).run_dir)
    nll = {
        arm: [m["eval/test_nll"] for m in store.metrics(arm).values()] for arm, _ in store.arms()
    }
    assert np.all(np.diff(nll["replace"]) > 0)
    assert nll["accumulate"][-1] - nll["accumulate"][0] < 0.5 * (
        nll["replace"][-1] - nll["replace"][0]
    )
    words = [m["model/words"] for m in store.metrics("replace, tau=0.7").values()]
    assert np.all(np.diff(words) < 0) and words[-1] < 0.2 * words[0]
    claims = {c.text: c for c in claims_for(config, store)}
    assert claims[
        "replace, tau=0.7: the support shrinks every generation (word types produced)"
    ].holds
    same = start_run(config, tmp_path / "again")
    again = RunStore.open(same.run_dir)
    assert again.metrics("replace") == store.metrics("replace")


def test_a_rare_word_alarm_rolls_back_then_halts_a_replace_run(tmp_path: Path) -> None:
    base = ["train_documents=3000", "arms=[{name: replace, policy: {mix: replace}}]"]
    free = load_config(CONFIGS / "collapse" / "ngram.yaml", [*base, "generations=3"])
    free_store = RunStore.open(start_run(free, tmp_path / "free").run_dir)
    rare = [m["monitor/rare_words"] for m in free_store.metrics("replace").values()]
    line = (rare[2] + rare[3]) / 2  # the unguarded run crosses it at generation 3
    guarded = load_config(
        CONFIGS / "collapse" / "ngram.yaml",
        [
            *base,
            "generations=8",
            "max_consecutive_rollbacks=2",
            f"alarms=[{{metric: monitor/rare_words, below: {line}, action: rollback}}]",
        ],
    )
    store = RunStore.open(start_run(guarded, tmp_path / "guarded").run_dir)
    decisions = store.decisions("replace")
    assert [decisions[g][0] for g in (1, 2, 3)] == ["accept", "accept", "rollback"]
    assert decisions[max(decisions)][0] == "halt" and max(decisions) < 8
    assert dict(store.arms())["replace"] == "halted"
    series = store.metrics("replace")
    accepted = [g for g, (action, _) in decisions.items() if action == "accept"]
    assert all(series[g]["monitor/rare_words"] >= line for g in accepted)
    alarms = [e for e in store.events() if e[3] == "alarm"]
    assert alarms and "monitor/rare_words" in alarms[0][4]
