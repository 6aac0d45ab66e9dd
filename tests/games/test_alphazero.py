"""AlphaZero: the tic-tac-toe target, and the loop's invariants with a torch model inside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from selfimprove.core.cpu import cpu_seconds
from selfimprove.core.provenance import origin, stamp
from selfimprove.core.store import RunStore
from selfimprove.experiments import (
    build_arms,
    claims_for,
    load_config,
    parse_config,
    resume_run,
    start_run,
)
from selfimprove.games.alphazero import AlphaZeroConfig, PlayChunk, SelfPlay
from selfimprove.games.bots import UniformEvaluator
from selfimprove.games.mcts import SearchConfig
from selfimprove.games.network import initial_model
from selfimprove.games.rules import TicTacToe
from selfimprove.games.selfplay import Positions, SelfPlaySettings, replay_failures, self_play
from selfimprove.games.training import dihedral, mirror_columns
from selfimprove.games.workers import chunk_sizes
from tests.conftest import CONFIGS

TINY = {
    "kind": "games.alphazero",
    "generations": 4,
    "self_play": {"games_per_generation": 16, "num_simulations": 10},
    "train": {"steps": 20, "batch_size": 32},
    "evaluation": {"num_simulations": 10, "random_games": 10},
}


def test_tictactoe_solved_from_random_weights_within_five_cpu_minutes(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "games" / "tictactoe.yaml")
    start = cpu_seconds()  # this process's CPU time, and any self-play worker's
    run = start_run(config, tmp_path)
    spent = cpu_seconds() - start
    store = RunStore.open(run.run_dir)
    series = store.metrics("alphazero-tictactoe")
    first, last = series[0], series[max(series)]
    assert spent < 300
    assert (
        first["eval/in_play_mistakes"] > 10 and first["eval/in_play_losses"] > 0
    )  # it starts weak
    assert last["eval/in_play_mistakes"] == 0 and last["eval/in_play_losses"] == 0
    assert last["eval/losses_vs_random"] == 0
    assert last["eval/policy_mistakes"] < 0.2 * first["eval/policy_mistakes"]
    assert all(claim.holds for claim in claims_for(config, store))


def test_resumed_alphazero_equals_uninterrupted(tmp_path: Path) -> None:
    config = parse_config(TINY, "test")
    whole = start_run(config, tmp_path / "whole")
    cut = start_run(config, tmp_path / "cut", stop_after=2)
    resumed = resume_run(cut.run_dir)
    metrics = [RunStore.open(r.run_dir).metrics("alphazero-tictactoe") for r in (whole, resumed)]
    assert metrics[0] == metrics[1]
    assert len(metrics[0]) == 5


def test_train_never_mutates_the_incumbent() -> None:
    config = parse_config(TINY, "test")
    assert isinstance(config, AlphaZeroConfig)
    (arm,) = build_arms(config)
    pipe, rng = arm.pipeline, np.random.default_rng(0)
    model, history = pipe.initialize(rng)
    before = {k: v.clone() for k, v in model.state.items()}
    samples = pipe.generate(model, 1, rng)
    kept = pipe.curate(
        stamp(samples, pipe.verify(samples, rng), origin("a", 1, 0)), [history], 1, rng
    )
    candidate = pipe.train(model, kept, rng)
    assert all(torch.equal(before[k], model.state[k]) for k in before)
    assert any(not torch.equal(before[k], candidate.state[k]) for k in before)


def test_self_play_records_every_move_with_consistent_targets() -> None:
    game = TicTacToe()
    positions = self_play(
        game,
        UniformEvaluator(9),
        SearchConfig(num_simulations=16),
        12,
        np.random.default_rng(0),
        SelfPlaySettings(temperature_moves=9),
    )
    assert np.allclose(positions.policies.sum(axis=1), 1.0)
    assert set(np.unique(positions.values)) <= {-1.0, 0.0, 1.0}
    stones = (positions.boards != 0).sum(axis=(1, 2))
    assert (stones == 0).sum() == 12  # each game's first position is recorded once
    assert (
        positions.policies[positions.boards.reshape(-1, 9) != 0] == 0
    ).all()  # no mass on taken cells
    # Consecutive positions of one game alternate sides: values of a decisive game alternate sign.
    first_game = positions.values[::12][:3]
    assert first_game[0] == -first_game[1] == first_game[2] or (first_game == 0).all()


def test_symmetries_keep_policies_on_empty_cells() -> None:
    rng = np.random.default_rng(1)
    boards = rng.integers(-1, 2, size=(5, 3, 3)).astype(np.int8)
    policies = (boards.reshape(5, 9) == 0) * rng.random((5, 9))
    all_boards, all_policies = dihedral(boards, policies)
    assert all_boards.shape == (40, 3, 3)
    assert (all_policies[all_boards.reshape(40, 9) != 0] == 0).all()
    _, c4_policies = mirror_columns(np.zeros((2, 6, 7), np.int8), np.eye(7)[[0, 3]])
    assert c4_policies[2:].argmax(axis=1).tolist() == [6, 3]


def test_connect4_pipeline_scores_pons_sets_and_climbs_the_ladder(tmp_path: Path) -> None:
    from tests.games.test_ground_truth import PONS

    if not PONS.is_file():
        return
    config = parse_config(
        {
            "kind": "games.alphazero",
            "game": "connect4",
            "generations": 1,
            "net": {"kind": "resnet", "channels": 8, "blocks": 1},
            "self_play": {"games_per_generation": 8, "num_simulations": 8},
            "train": {"steps": 5, "batch_size": 32},
            "evaluation": {
                "num_simulations": 8,
                "pons_table": str(PONS),
                "pons_positions": 20,
                "ladder_every": 1,
                "ladder_pairs": 4,
                "ladder_anchors": [{"simulations": 4, "elo": 0}, {"simulations": 40, "elo": 300}],
            },
        },
        "test",
    )
    run = start_run(config, tmp_path)
    last = RunStore.open(run.run_dir).metrics("alphazero-connect4")[1]
    for label in ("End-Easy", "Middle-Easy", "Middle-Medium", "Beginning-Easy"):
        rate = last[f"pons/{label}/search_mistake_rate"]
        assert (
            last[f"pons/{label}/search_mistake_rate_low"]
            <= rate
            <= last[f"pons/{label}/search_mistake_rate_high"]
        )
    assert last["ladder/elo_low"] <= last["ladder/elo"] <= last["ladder/elo_high"]
    assert 0.0 <= last["ladder/score_vs_mcts40"] <= 1.0
    pons_claims = [
        c for c in claims_for(config, RunStore.open(run.run_dir)) if "MCTS-10000" in c.text
    ]
    assert len(pons_claims) == 4  # one per set, each against the published MCTS-10000 rate
    scoring = config.evaluation  # the evidence says the budget it was scored at
    budget = (
        f"({scoring.num_simulations:,} simulations, first {scoring.pons_positions:,} positions)"
    )
    assert all(c.measured.endswith(budget) for c in pons_claims), pons_claims


def test_othello_pipeline_runs_a_generation_and_climbs_the_ladder(tmp_path: Path) -> None:
    config = load_config(
        CONFIGS / "games" / "othello6.yaml",
        [
            "generations=1",
            "net.blocks=1",
            "net.channels=8",
            "self_play.games_per_generation=4",
            "self_play.num_simulations=4",
            "train.steps=3",
            "evaluation.num_simulations=4",
            "evaluation.ladder_every=1",
            "evaluation.ladder_pairs=2",
            "evaluation.ladder_anchors=[{simulations: 2, elo: 0}]",
        ],
    )
    run = start_run(config, tmp_path)
    last = RunStore.open(run.run_dir).metrics("alphazero-othello6")[1]
    assert last["ladder/elo_low"] <= last["ladder/elo"] <= last["ladder/elo_high"]
    assert 0.0 <= last["ladder/score_vs_mcts2"] <= 1.0


def test_chunks_on_worker_processes_are_the_chunks_played_here() -> None:
    """Self-play split over worker processes equals playing each chunk in this process with
    its seed: the executor changes where games are played, never which games."""
    config = AlphaZeroConfig.model_validate(
        TINY
        | {
            "self_play": TINY["self_play"] | {"chunks": 2},
            "executor": {"kind": "processes", "num_workers": 2},
        }
    )
    game = TicTacToe()
    model = initial_model(config.net, 3, 3, 9, np.random.default_rng(0))
    played = SelfPlay(game, config.self_play, config.executor)(model, 1, np.random.default_rng(7))
    play = PlayChunk(game, config.self_play, model)
    seeds = np.random.default_rng(7).integers(2**63, size=2)
    alone = [play(games, int(seed)) for games, seed in zip(chunk_sizes(16, 2), seeds, strict=True)]
    assert played.num_games == 16
    for name in ("boards", "policies", "values", "search_values", "actions"):
        assert np.array_equal(
            getattr(played, name), np.concatenate([getattr(p, name) for p in alone])
        )
    assert np.array_equal(played.games, np.concatenate([alone[0].games, alone[1].games + 8]))
    assert not replay_failures(game, played).any()  # the merged games still replay


def test_older_recipes_workers_mean_chunks_on_processes() -> None:
    config = AlphaZeroConfig.model_validate(TINY | {"self_play": {"workers": 2}})
    assert config.self_play.chunks == 2
    assert (config.executor.kind, config.executor.num_workers) == ("processes", 2)
    named = AlphaZeroConfig.model_validate(
        TINY | {"self_play": {"workers": 2}, "executor": {"kind": "local"}}
    )
    assert named.executor.kind == "local"  # a recipe's own executor wins


def _tampered(positions: Positions, **changes: np.ndarray) -> Positions:
    fields = {name: getattr(positions, name) for name in positions.__dataclass_fields__}
    return Positions(**(fields | changes))


def test_the_referee_confirms_real_games_and_catches_each_kind_of_tampering() -> None:
    """Verify for self-play: every recorded game replays with the rules. Each tampering
    below breaks exactly the game it touches."""
    game = TicTacToe()
    played = self_play(
        game,
        UniformEvaluator(9),
        SearchConfig(num_simulations=8),
        6,
        np.random.default_rng(1),
        SelfPlaySettings(temperature_moves=9),
    )
    assert not replay_failures(game, played).any()
    target = int(played.games[5])  # a position of some game, not its first
    index = np.flatnonzero(played.games == target)
    values = played.values.copy()
    values[index[-1]] = -values[index[-1]] if values[index[-1]] else 1.0  # a wrong outcome
    actions = played.actions.copy()
    taken = np.flatnonzero(played.boards[index[-1]].reshape(-1) != 0)
    actions[index[-1]] = taken[0]  # a move onto a taken cell
    boards = played.boards.copy()
    boards[index[1]] = boards[index[0]]  # a position the moves do not lead to
    cut = np.ones(len(played.values), dtype=bool)
    cut[index[-1]] = False  # the game's last move missing: recorded unfinished
    unfinished = _tampered(
        played,
        **{
            n: getattr(played, n)[cut]
            for n in ("boards", "policies", "values", "search_values", "games", "actions")
        },
    )
    for broken in (
        _tampered(played, values=values),
        _tampered(played, actions=actions),
        _tampered(played, boards=boards),
        unfinished,
    ):
        assert list(np.flatnonzero(replay_failures(game, broken))) == [target]


def test_chunk_sizes_split_games_evenly() -> None:
    assert chunk_sizes(256, 2) == [128, 128]
    assert chunk_sizes(7, 2) == [4, 3]
    assert chunk_sizes(1, 2) == [1]
