"""E7 (VAE) and E8 (tiny GPT) on tiny settings: the loops run, resume exactly, keep their
exhibits, and show the effects they exist for. The full-size targets are in
benchmarks/RESULTS.md (`configs/collapse/vae.yaml`, `configs/collapse/tiny_gpt.yaml`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selfimprove.core.store import RunStore
from selfimprove.experiments import claims_for, load_config, resume_run, start_run
from selfimprove.reports.html import write_run_report
from tests.conftest import CONFIGS

TINY_GPT = [
    "generations=2",
    "model={context: 33, layers: 1, heads: 2, width: 32}",
    "train_documents=60",
    "test_documents=20",
    "steps=40",
    "training={batch_size: 8, learning_rate: 0.003, warmup_steps: 5}",
    "arms=[{name: replace, policy: {mix: replace}}, {name: accumulate, policy: {mix: accumulate}}]",
]


def metrics(run_dir: Path) -> dict[str, dict[int, dict[str, float]]]:
    store = RunStore.open(run_dir)
    return {arm: store.metrics(arm) for arm, _ in store.arms()}


def test_tiny_gpt_collapse_resumes_exactly_and_keeps_its_samples(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "collapse" / "tiny_gpt.yaml", TINY_GPT)
    whole = start_run(config, tmp_path / "whole")
    cut = start_run(config, tmp_path / "cut", stop_after=1)
    assert cut.status == "stopped"
    assert resume_run(cut.run_dir).status == "finished"
    table = metrics(whole.run_dir)
    assert metrics(cut.run_dir) == table
    # every arm starts from the same generation-0 model (trained once per run)
    assert table["replace"][0] == table["accumulate"][0]
    # learning happened: far below the 4.6 nats of a uniform guess over 98 characters
    assert table["replace"][0]["eval/test_nll"] < 3.6
    store = RunStore.open(whole.run_dir)
    samples = store.exhibits("replace", "samples")
    assert sorted(samples) == [0, 1, 2] and all(len(s) == 4 for s in samples.values())
    assert all(len(text) <= 32 for text in samples[2])
    under_gen0 = store.exhibits("replace", "gen0_nll")
    assert len(under_gen0[1]) == 60  # one value per generated document
    page = write_run_report(store, claims_for(config, store)).read_text()
    assert (
        "sample text of each generation" in page
        and 'alt="gen0 nll: distribution per generation"' in page
    )


def test_tiny_gpt_samples_the_same_documents_with_and_without_the_cache(tmp_path: Path) -> None:
    cached = load_config(CONFIGS / "collapse" / "tiny_gpt.yaml", [*TINY_GPT, "generations=1"])
    plain = load_config(
        CONFIGS / "collapse" / "tiny_gpt.yaml", [*TINY_GPT, "generations=1", "kv_cache=false"]
    )
    a = metrics(start_run(cached, tmp_path / "a").run_dir)["replace"]
    b = metrics(start_run(plain, tmp_path / "b").run_dir)["replace"]
    for key in ("monitor/distinct_2", "monitor/vocabulary", "monitor/rare_words"):
        assert a[1][key] == b[1][key]
    assert a[1]["eval/test_nll"] == pytest.approx(b[1]["eval/test_nll"], abs=1e-4)


VAE = [
    "generations=2",
    "steps=300",
    "classifier_steps=200",
    "monitor_samples=300",
    "held_out_per_digit=30",
    "model={hidden: 128, latent: 8}",
    "arms=[{name: replace, policy: {mix: replace}}, {name: accumulate, policy: {mix: accumulate}}]",
]


def test_vae_collapse_shrinks_under_replace_and_draws_sample_grids(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "collapse" / "vae.yaml", VAE)
    run = start_run(config, tmp_path)
    table = metrics(run.run_dir)
    replace, accumulate = table["replace"], table["accumulate"]
    assert replace[0]["eval/test_loss"] < 0.5 * 784 * np.log(2)  # well below a blank model
    assert replace[2]["collapse/latent_spread"] < 0.95 * replace[0]["collapse/latent_spread"]
    assert replace[2]["monitor/recall"] < replace[0]["monitor/recall"]
    assert accumulate[2]["collapse/latent_spread"] > replace[2]["collapse/latent_spread"]
    shares = [replace[2][f"class/share_of_digit_{d}"] for d in range(10)]
    assert sum(shares) == pytest.approx(1.0)
    store = RunStore.open(run.run_dir)
    grids = store.exhibits("replace", "grid")
    assert sorted(grids) == [0, 1, 2] and grids[1]["count"] == 40
    page = write_run_report(store, claims_for(config, store)).read_text()
    assert (
        'alt="replace: samples of each generation&#x27;s model"' in page
        and "latent spread shrinks" in page
    )


def test_top_p_is_refused_where_the_model_has_no_tokens() -> None:
    from selfimprove.core.config import ConfigError

    with pytest.raises(ConfigError, match="top_p"):
        load_config(CONFIGS / "collapse" / "vae.yaml", ["arms=[{policy: {top_p: 0.9}}]"])
    with pytest.raises(ConfigError, match="top_p"):
        load_config(CONFIGS / "collapse" / "gaussian.yaml", ["arms=[{policy: {top_p: 0.9}}]"])
