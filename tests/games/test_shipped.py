"""The agent that ships with the package: its weights are read without pickle, round-trip
exactly, say where they came from, and play legal moves (also through `selfimprove play`
with no run)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from selfimprove.cli import main
from selfimprove.games import shipped
from selfimprove.games.alphazero import make_game
from selfimprove.games.network import NetSpec, initial_model


def test_a_written_agent_reads_back_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = NetSpec(kind="resnet", channels=8, blocks=1, precision="bfloat16")
    model = initial_model(spec, 6, 7, 7, np.random.default_rng(0))
    shipped.write_agent("connect4", model, {"run": "r", "generation": 3}, tmp_path)
    monkeypatch.setattr(shipped, "AGENTS", tmp_path)
    agent = shipped.shipped("connect4")
    assert agent is not None and agent.about["generation"] == 3
    assert agent.model.spec == spec and agent.model.shape == (6, 7, 7)
    assert set(agent.model.state) == set(model.state)
    for name, tensor in model.state.items():
        assert torch.equal(agent.model.state[name], tensor), name
    assert shipped.shipped("tictactoe") is None


def test_the_shipped_connect4_agent_says_where_it_came_from_and_plays() -> None:
    agent = shipped.shipped("connect4")
    assert agent is not None, "games/agents/connect4.* ship with the package"
    assert (shipped.AGENTS / "connect4.npz").stat().st_size < 4 * 2**20
    about = agent.about
    assert about["run"].startswith("games-alphazero-") and about["generation"] > 0
    assert "selfimprove run games/connect4" in about["command"]
    assert about["pons"] and all(0 <= v <= 1 for k, v in about["pons"].items() if k != "generation")
    game, _ = make_game("connect4")
    board = game.initial(1)[0]
    legal = game.legal_actions(board[None])[0]
    assert legal[agent.move(board, 16, np.random.default_rng(0))]


def test_play_without_a_run_uses_the_shipped_agent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("4\nq\n"))
    assert main(["play", "connect4", "--simulations", "8"]) == 0
    out = capsys.readouterr().out
    assert "the shipped agent (run games-alphazero-" in out and "agent plays" in out
