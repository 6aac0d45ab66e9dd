"""AlphaZero from zero knowledge, on the generation loop.

initialize  random weights (seeded), nothing kept yet
generate    self-play: `games_per_generation` games at once, batched PUCT with Dirichlet
            noise at the root, moves sampled from the visits for the first moves
verify      the game outcome labels every position: nothing to filter
curate      replay window: the positions of the last `replay_window` generations
train       policy + value loss on a copy of the incumbent's weights, symmetries added
evaluate    against fixed ground truth: exact minimax (tic-tac-toe), Pons sets (Connect Four)
gate        continuous updates (every candidate is kept); the fixed anchors above, not a
            40-game arena, tell whether it improved (REFERENCES.md: small arenas are noise)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, FilePath, model_validator

from selfimprove.core.config import ConfigModel, LoopConfig
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.records import Metrics, Provenance, ProvenanceCount, Verdict
from selfimprove.core.stages import no_verification
from selfimprove.games.evaluation import (
    TicTacToeReferee,
    ladder_metrics,
    peer_metrics,
    pons_metrics,
)
from selfimprove.games.mcts import SearchConfig, search
from selfimprove.games.network import NetEvaluator, NetModel, NetSpec, initial_model
from selfimprove.games.pons import PonsSet, load_pons
from selfimprove.games.rules import ConnectFour, Game, Othello, TicTacToe
from selfimprove.games.selfplay import Positions, self_play
from selfimprove.games.training import Symmetries, TrainConfig, dihedral, mirror_columns, train_net
from selfimprove.games.workers import play_chunks

Window = tuple[Positions, ...]


class SelfPlayConfig(ConfigModel):
    games_per_generation: int = Field(128, ge=1, description="games played at once per generation")
    num_simulations: int = Field(50, ge=1, description="MCTS simulations per move")
    c_puct: float = Field(1.5, gt=0)
    dirichlet_alpha: float = Field(0.5, gt=0, description="root noise concentration")
    dirichlet_fraction: float = Field(0.25, ge=0, le=1, description="root noise weight")
    temperature_moves: int = Field(4, ge=0, description="moves sampled from visits before argmax")
    reuse_tree: bool = Field(True, description="carry the chosen move's subtree to the next search")
    gumbel_considered: int = Field(
        0,
        ge=0,
        description="> 0: Gumbel root search over this many candidates (for few simulations)",
    )
    workers: int = Field(
        1,
        ge=1,
        le=2,
        description="processes playing a generation's games (2: one more besides the loop's)",
    )


class LadderAnchor(ConfigModel):
    simulations: int = Field(ge=1, description="random-rollout MCTS simulations per move")
    elo: float = Field(description="the anchor's assumed rating")


class EvaluationConfig(ConfigModel):
    num_simulations: int = Field(50, ge=1, description="simulations when scoring the search")
    solver: bool = Field(
        False,
        description="score the search with MCTS-Solver (proven wins and losses backed up "
        "exactly); the raw policy is scored either way",
    )
    random_games: int = Field(100, ge=0, description="tic-tac-toe: games against a random player")
    pons_table: FilePath | None = Field(None, description="Connect Four: pons_move_scores.tsv")
    pons_positions: int = Field(200, ge=1, description="Connect Four: positions scored per set")
    pons_every: int = Field(
        1, ge=1, description="Connect Four: score the Pons sets every N generations"
    )
    ladder_every: int = Field(
        0, ge=0, description="Connect Four: Elo ladder every N generations (0: never)"
    )
    ladder_pairs: int = Field(20, ge=1, description="paired games (2 each) per anchor or peer")
    ladder_anchors: tuple[LadderAnchor, ...] = Field(
        (),
        description="random-rollout MCTS opponents and the Elo each is assumed to have "
        "(REFERENCES.md, MCTS-100 = 0: MCTS-400 +290, MCTS-1000 +425, MCTS-10000 +750)",
    )
    peers: tuple[int, ...] = Field(
        (),
        description="Connect Four: simulation budgets of OpenSpiel's C++ random-rollout MCTS "
        "to play at ladder generations (needs the 'peers' extra)",
    )


class AlphaZeroConfig(LoopConfig):
    """Self-play from random weights and the rules only."""

    kind: Literal["games.alphazero"] = "games.alphazero"
    game: Literal["tictactoe", "connect4", "othello6"] = "tictactoe"
    net: NetSpec = NetSpec()
    self_play: SelfPlayConfig = SelfPlayConfig()
    train: TrainConfig = TrainConfig()
    evaluation: EvaluationConfig = EvaluationConfig()

    @model_validator(mode="after")
    def _peers_play_connect4(self) -> AlphaZeroConfig:
        if self.evaluation.peers and self.game != "connect4":
            raise ValueError("evaluation.peers: OpenSpiel opponents are wired for connect4 only")
        return self


def make_game(name: str) -> tuple[Game, Symmetries]:
    match name:
        case "tictactoe":
            return TicTacToe(), dihedral
        case "othello6":
            return Othello(), dihedral
        case _:
            return ConnectFour(), mirror_columns


@dataclass(frozen=True)
class RandomWeights:
    game: Game
    spec: NetSpec

    def __call__(self, rng: np.random.Generator) -> tuple[NetModel, Window]:
        return initial_model(
            self.spec, self.game.rows, self.game.cols, self.game.num_actions, rng
        ), ()


@dataclass(frozen=True)
class PlayChunk:
    """Some of a generation's self-play games with one model; pickles to a worker process."""

    game: Game
    config: SelfPlayConfig
    model: NetModel
    generation: int

    def __call__(self, num_games: int, seed: int | np.random.Generator) -> Positions:
        c = self.config
        search_config = SearchConfig(
            c.num_simulations, c.c_puct, c.dirichlet_alpha, c.dirichlet_fraction
        )
        return self_play(
            self.game,
            NetEvaluator.of(self.model),
            search_config,
            num_games,
            c.temperature_moves,
            self.generation,
            np.random.default_rng(seed),  # a Generator passes through unchanged
            c.reuse_tree,
            c.gumbel_considered,
        )


@dataclass(frozen=True)
class SelfPlay:
    game: Game
    config: SelfPlayConfig

    def __call__(self, model: NetModel, generation: int, rng: np.random.Generator) -> Positions:
        play = PlayChunk(self.game, self.config, model, generation)
        if self.config.workers == 1:
            return play(self.config.games_per_generation, rng)
        return play_chunks(play, self.config.games_per_generation, self.config.workers, rng)


@dataclass(frozen=True)
class ReplayWindow:
    generations: int

    def __call__(
        self,
        scored: Positions,
        history: Sequence[Window],
        generation: int,
        rng: np.random.Generator,
    ) -> Window:
        del rng
        previous = history[-1] if history else ()
        return (*(p for p in previous if p.generation > generation - self.generations), scored)


@dataclass(frozen=True)
class TrainOnWindow:
    config: TrainConfig
    symmetries: Symmetries

    def __call__(self, incumbent: NetModel, kept: Window, rng: np.random.Generator) -> NetModel:
        return train_net(incumbent, kept, self.config, self.symmetries, rng)


@dataclass(frozen=True)
class EvaluateTicTacToe:
    referee: TicTacToeReferee
    config: EvaluationConfig

    def __call__(self, model: NetModel, generation: int, rng: np.random.Generator) -> Metrics:
        del generation
        search_config = SearchConfig(self.config.num_simulations, solver=self.config.solver)
        metrics = self.referee(NetEvaluator.of(model), search_config, self.config.random_games, rng)
        return metrics | {"net/parameters": float(model.num_parameters())}


@dataclass(frozen=True)
class EvaluateAgainstAnchors:
    """Connect Four: Pons mistake rates; any game: an Elo ladder of fixed MCTS bots."""

    game: Game
    config: EvaluationConfig
    pons: tuple[PonsSet, ...]  # loaded once when the arm is built; empty: no Pons scoring

    def __call__(self, model: NetModel, generation: int, rng: np.random.Generator) -> Metrics:
        c, evaluator = self.config, NetEvaluator.of(model)
        metrics: Metrics = {"net/parameters": float(model.num_parameters())}
        if self.pons and generation % c.pons_every == 0:
            metrics |= pons_metrics(evaluator, self.pons, c.num_simulations, rng, c.solver)
        ladder_now = c.ladder_every > 0 and generation % c.ladder_every == 0
        if ladder_now and c.ladder_anchors:
            anchors = {a.simulations: a.elo for a in c.ladder_anchors}
            metrics |= ladder_metrics(
                self.game, evaluator, anchors, c.ladder_pairs, c.num_simulations, rng, c.solver
            )
        if ladder_now and c.peers:
            metrics |= peer_metrics(
                evaluator, c.peers, c.ladder_pairs, c.num_simulations, rng, c.solver
            )
        return metrics


def describe(kept: Window) -> tuple[ProvenanceCount, ...]:
    verdict = Verdict(True, "game outcome")
    return tuple(
        ProvenanceCount(
            Provenance("synthetic", p.generation, f"generation-{p.generation - 1}", verdict),
            len(p.values),
        )
        for p in kept
    )


def _pons_sets(config: AlphaZeroConfig) -> tuple[PonsSet, ...]:
    """Connect Four's Pons sets, cut to `pons_positions` each; none for other games."""
    table = config.evaluation.pons_table
    if table is None or config.game != "connect4":
        return ()
    rows = slice(0, config.evaluation.pons_positions)
    return tuple(pons_set.subset(rows) for _, pons_set in sorted(load_pons(table).items()))


def build_arms(config: AlphaZeroConfig) -> list[Arm]:
    game, symmetries = make_game(config.game)
    evaluate = (
        EvaluateTicTacToe(TicTacToeReferee(), config.evaluation)
        if config.game == "tictactoe"
        else EvaluateAgainstAnchors(game, config.evaluation, _pons_sets(config))
    )
    pipeline: Pipeline[NetModel, Positions, Positions, Window] = Pipeline(
        initialize=RandomWeights(game, config.net),
        generate=SelfPlay(game, config.self_play),
        verify=no_verification,
        curate=ReplayWindow(config.train.replay_window),
        train=TrainOnWindow(config.train, symmetries),
        evaluate=evaluate,
        history_window=1,  # the newest window already holds every generation still in use
        describe=describe,
    )
    return [Arm(f"alphazero-{config.game}", pipeline)]


def agent_move(
    model: NetModel,
    game: Game,
    board: np.ndarray,
    simulations: int,
    rng: np.random.Generator,
    solver: bool = False,
) -> tuple[int, float]:
    """The trained agent's move on one canonical board, and its value estimate (mover's view)."""
    result = search(
        game,
        NetEvaluator.of(model),
        board[None],
        SearchConfig(num_simulations=simulations, solver=solver),
        rng,
    )
    return int(result.best_action[0]), float(result.value[0])
