"""Agents that ship with the package, so people can play without training first
(`selfimprove play connect4`, the web app's play page).

An agent is two files in `games/agents/`: `<game>.json` (the net's spec and shape, the run and
generation it came from, the command that trained it, its measured Pons mistake rates) and
`<game>.npz` (the weights as float32 arrays, read with `allow_pickle=False`: never a pickle).
`benchmarks/ship_agent.py` writes them from a run's newest snapshot.

`agent_for(game)` returns a callable `(board) -> action` on one canonical board (the player to
move's view, `games/rules.py`), or None when no agent ships for that game: callers then fall
back to a fixed bot (`games/bots.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

AGENTS = Path(str(files("selfimprove.games").joinpath("agents")))


@dataclass(frozen=True)
class ShippedAgent:
    game: str
    about: dict[str, Any]  # where it came from and what it measured
    model: Any  # games.network.NetModel

    def move(self, board: np.ndarray, simulations: int, rng: np.random.Generator) -> int:
        from selfimprove.games.alphazero import agent_move, make_game

        game, _ = make_game(self.game)
        action, _ = agent_move(self.model, game, board, simulations, rng)
        return action


def shipped(game: str) -> ShippedAgent | None:
    """The agent that ships for `game`, or None."""
    about_path, weights_path = AGENTS / f"{game}.json", AGENTS / f"{game}.npz"
    if not about_path.is_file() or not weights_path.is_file():
        return None
    import torch

    from selfimprove.games.network import NetModel, NetSpec

    about = json.loads(about_path.read_text())
    with np.load(weights_path, allow_pickle=False) as arrays:
        state = {name: torch.from_numpy(arrays[name].copy()) for name in arrays.files}
    spec = NetSpec(**about["spec"])
    rows, cols, actions = about["shape"]
    return ShippedAgent(game, about, NetModel(spec, (rows, cols, actions), state))


def agent_for(game: str, simulations: int = 200) -> Callable[[np.ndarray], int] | None:
    agent = shipped(game)
    if agent is None:
        return None
    rng = np.random.default_rng()
    return lambda board: agent.move(board, simulations, rng)


def write_agent(game: str, model: Any, about: dict[str, Any], folder: Path = AGENTS) -> Path:
    """Write a trained net as a shipped agent (float32 weights; bfloat16 nets compute in
    bfloat16 under autocast but keep float32 weights)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {name: t.detach().float().numpy() for name, t in model.state.items()}
    arrays.update({name: t.numpy() for name, t in model.state.items() if not t.is_floating_point()})
    np.savez_compressed(folder / f"{game}.npz", **arrays)
    spec = model.spec.model_dump(mode="json")
    full = {"spec": spec, "shape": list(model.shape), **about}
    (folder / f"{game}.json").write_text(json.dumps(full, indent=2) + "\n")
    return folder / f"{game}.json"
