"""The policy/value net's bfloat16 option: close to float32, really bfloat16, reproducible."""

from __future__ import annotations

import numpy as np
import torch

from selfimprove.games.mcts import SearchConfig
from selfimprove.games.network import NetEvaluator, NetModel, NetSpec, initial_model
from selfimprove.games.rules import ConnectFour
from selfimprove.games.selfplay import SelfPlaySettings, self_play
from selfimprove.games.training import TrainConfig, mirror_columns, train_net

SPEC = {"kind": "resnet", "channels": 16, "blocks": 2}


def _model(precision: str) -> NetModel:
    spec = NetSpec.model_validate({**SPEC, "precision": precision})
    return initial_model(spec, 6, 7, 7, np.random.default_rng(0))


def test_bfloat16_evaluator_agrees_with_float32_to_bfloat16_precision() -> None:
    game, rng = ConnectFour(), np.random.default_rng(1)
    boards = self_play(
        game, NetEvaluator.of(_model("float32")), SearchConfig(8), 16, rng, SelfPlaySettings(8)
    ).boards
    exact, rounded = NetEvaluator.of(_model("float32")), NetEvaluator.of(_model("bfloat16"))
    assert rounded.bfloat16 and not exact.bfloat16
    p32, v32 = exact(boards, rng)
    p16, v16 = rounded(boards, rng)
    assert p16.dtype == np.float32 and v16.dtype == np.float64
    assert np.allclose(p16.sum(axis=1), 1.0, atol=1e-5)
    # bfloat16 keeps 8 significant bits: errors of ~1% of a logit, never 0 (it did run in bf16)
    assert 0 < np.abs(p16 - p32).max() < 0.03
    assert 0 < np.abs(v16 - v32).max() < 0.05


def test_bfloat16_training_learns_and_is_reproducible() -> None:
    game, rng = ConnectFour(), np.random.default_rng(2)
    played = self_play(
        game, NetEvaluator.of(_model("float32")), SearchConfig(8), 32, rng, SelfPlaySettings(8)
    )
    window = [played]
    config = TrainConfig(steps=60, batch_size=64, learning_rate=3e-3)
    trained = [
        train_net(_model(p), window, config, mirror_columns, np.random.default_rng(3))
        for p in ("bfloat16", "bfloat16", "float32")
    ]
    first, again, exact = trained
    assert all(torch.equal(first.state[k], again.state[k]) for k in first.state)
    assert any(not torch.equal(first.state[k], exact.state[k]) for k in first.state)
    assert first.state["stem.0.weight"].dtype == torch.float32  # master weights stay float32

    boards = np.concatenate([p.boards for p in window])
    targets = np.concatenate([p.policies for p in window])

    def policy_loss(model: NetModel) -> float:
        priors, _ = NetEvaluator.of(model)(boards, rng)
        return float(-(targets * np.log(priors + 1e-9)).sum(axis=1).mean())

    start, bf16, fp32 = policy_loss(_model("float32")), policy_loss(first), policy_loss(exact)
    assert bf16 < start - 0.1  # it learned
    assert abs(bf16 - fp32) < 0.1 * (start - fp32)  # about as much as float32 did
