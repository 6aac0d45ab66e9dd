"""AlphaZero from zero knowledge, on the generation loop.

initialize  random weights (seeded), nothing kept yet
generate    self-play: `games_per_generation` games at once, batched PUCT with Dirichlet
            noise at the root, moves sampled from the visits for the first moves
verify      a referee replays every game with the rules: each move legal, each position the
            one the moves lead to, each value label the game's outcome (the game outcome is
            the verdict; a generation whose games do not replay is not trained on)
curate      replay window: the verified positions of the last `replay_window` generations
train       policy + value loss on a copy of the incumbent's weights, symmetries added
evaluate    against fixed ground truth: exact minimax (tic-tac-toe), Pons sets (Connect Four)
gate        continuous updates (every candidate is kept, a named gate); the fixed anchors
            above, not a 40-game arena, tell whether it improved (REFERENCES.md: small arenas
            are noise). A recipe may set a no-regression gate on an anchor's metric instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from selfimprove.core.config import ConfigModel, Count, ExecutorConfig, LoopConfig
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.executors import executor_of
from selfimprove.core.experiment import Experiment
from selfimprove.core.gates import build_gate
from selfimprove.core.records import Metrics, Sample, Verdict
from selfimprove.games.claims import alphazero_claims
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
from selfimprove.games.selfplay import Positions, SelfPlaySettings, replay_failures, self_play
from selfimprove.games.training import Symmetries, TrainConfig, dihedral, mirror_columns, train_net
from selfimprove.games.workers import play_chunks

Window = tuple[Sample[Positions], ...]  # stamped: each knows its generation and model


class SelfPlayConfig(ConfigModel):
    games_per_generation: int = Field(128, ge=1, description="games played at once per generation")
    num_simulations: int = Field(50, ge=1, description="MCTS simulations per move")
    c_puct: float = Field(1.5, gt=0, description="PUCT exploration constant")
    dirichlet_alpha: float = Field(0.5, gt=0, description="root noise concentration")
    dirichlet_fraction: float = Field(0.25, ge=0, le=1, description="root noise weight")
    temperature_moves: int = Field(4, ge=0, description="moves sampled from visits before argmax")
    reuse_tree: bool = Field(True, description="carry the chosen move's subtree to the next search")
    gumbel_considered: int = Field(
        0,
        ge=0,
        description="> 0: Gumbel root search over this many candidates (for few simulations)",
    )
    chunks: int = Field(
        1,
        ge=1,
        le=4096,
        description="seeded pieces a generation's games are split into, each with its own "
        "random stream; results depend on this, never on the executor that plays them",
    )

    @model_validator(mode="before")
    @classmethod
    def _workers_are_chunks(cls, data: Any) -> Any:
        """Recipes before executors said `workers: 2` (two chunks, one more process)."""
        if isinstance(data, dict) and "workers" in data:
            data = dict(data)
            workers = data.pop("workers")
            data.setdefault("chunks", workers)
        return data

    def search(self) -> SearchConfig:
        return SearchConfig(
            self.num_simulations, self.c_puct, self.dirichlet_alpha, self.dirichlet_fraction
        )

    def settings(self) -> SelfPlaySettings:
        return SelfPlaySettings(self.temperature_moves, self.reuse_tree, self.gumbel_considered)


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
    pons_table: Path | None = Field(
        None,
        description="Connect Four: Pascal Pons's scored positions (pons_move_scores.tsv, from "
        "shared/data/connect4 beside the repository; not ours to ship); null: no Pons scoring",
    )

    @field_validator("pons_table")
    @classmethod
    def _pons_table_exists(cls, path: Path | None) -> Path | None:
        if path is None:
            return path
        shown = str(path).encode("utf-8", "backslashreplace").decode()  # a typed surrogate, too
        try:
            found = path.is_file()
        except (OSError, ValueError):  # a name the file system cannot take
            found = False
        if not found:
            raise ValueError(
                f"{shown} is not a file: it is Pascal Pons's Connect Four test set "
                "(pons_move_scores.tsv in shared/data/connect4 beside the repository); give "
                "its path with --set evaluation.pons_table=PATH, or null to score without it"
            )
        return path

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
    peers: tuple[Count, ...] = Field(
        (),
        description="Connect Four: simulation budgets of OpenSpiel's C++ random-rollout MCTS "
        "to play at ladder generations (needs the 'peers' extra)",
    )


class AlphaZeroConfig(LoopConfig):
    """Self-play from random weights and the rules only."""

    kind: Literal["games.alphazero"] = Field(
        "games.alphazero", description="which experiment this recipe runs"
    )
    parallel: ClassVar[bool] = True  # self-play chunks go to the executor
    game: Literal["tictactoe", "connect4", "othello6"] = Field(
        "tictactoe", description="tictactoe, connect4 or othello6"
    )
    net: NetSpec = Field(NetSpec(), description="the policy/value network")
    self_play: SelfPlayConfig = Field(SelfPlayConfig(), description="how games are played")
    train: TrainConfig = Field(TrainConfig(), description="training on the replay window")
    evaluation: EvaluationConfig = Field(
        EvaluationConfig(), description="scoring against fixed anchors"
    )

    @model_validator(mode="before")
    @classmethod
    def _workers_meant_processes(cls, data: Any) -> Any:
        """`self_play.workers: 2` of older recipes also meant a worker process: the
        `processes` executor, unless the recipe names one."""
        play = data.get("self_play") if isinstance(data, dict) else None
        if isinstance(play, dict) and int(play.get("workers", 1)) > 1:
            data = {"executor": {"kind": "processes", "num_workers": play["workers"]}} | data
        return data

    def memory_bytes(self) -> int:
        """Search trees of every game at once (a node: the board, 17 bytes per action, its
        bookkeeping; twice the simulations with tree reuse) and the positions of the replay
        window (float32 planes, policy and value per move)."""
        cells, actions, moves = {"tictactoe": (9, 9, 9), "connect4": (42, 7, 42)}.get(
            self.game, (36, 37, 60)
        )
        play = self.self_play
        simulations = max(play.num_simulations, self.evaluation.num_simulations)
        simulations = max([simulations, *(a.simulations for a in self.evaluation.ladder_anchors)])
        node = cells + 17 * actions + 32
        trees = play.games_per_generation * 2 * (simulations + 1) * node
        position = 4 * (3 * cells + actions + 1)
        window = play.games_per_generation * moves * position * self.train.replay_window
        return trees + window

    @model_validator(mode="after")
    def _peers_play_connect4(self) -> AlphaZeroConfig:
        if self.evaluation.peers and self.game != "connect4":
            raise ValueError("evaluation.peers: OpenSpiel opponents are wired for connect4 only")
        return self


CONTINUOUS_UPDATES = "continuous updates: every candidate is kept; fixed anchors judge progress"


def make_game(name: str) -> tuple[Game, Symmetries]:
    match name:
        case "tictactoe":
            return TicTacToe(), dihedral
        case "othello6":
            return Othello(), dihedral
        case "connect4":
            return ConnectFour(), mirror_columns
    raise ValueError(f"unknown game {name!r}")


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

    def __call__(self, num_games: int, seed: int | np.random.Generator) -> Positions:
        return self_play(
            self.game,
            NetEvaluator.of(self.model),
            self.config.search(),
            num_games,
            np.random.default_rng(seed),  # a Generator passes through unchanged
            self.config.settings(),
        )

    def piece(self, part: tuple[int, int]) -> Positions:
        """One chunk, `(games, seed)`: what an executor runs."""
        return self(*part)


@dataclass(frozen=True)
class SelfPlay:
    game: Game
    config: SelfPlayConfig
    executor: ExecutorConfig

    def __call__(self, model: NetModel, generation: int, rng: np.random.Generator) -> Positions:
        del generation  # the engine stamps the positions with it
        play = PlayChunk(self.game, self.config, model)
        if self.config.chunks == 1:
            return play(self.config.games_per_generation, rng)
        games, chunks = self.config.games_per_generation, self.config.chunks
        return play_chunks(play.piece, games, chunks, rng, executor_of(self.executor))


@dataclass(frozen=True)
class Referee:
    """Verify: replay every game of the generation with the rules (`replay_failures`)."""

    game: Game

    def __call__(self, samples: Positions, rng: np.random.Generator) -> Verdict:
        del rng
        failed = int(replay_failures(self.game, samples).sum())
        return Verdict(
            failed == 0,
            "referee: games replayed with the rules",
            1 - failed / max(samples.num_games, 1),
            f"{samples.num_games - failed} of {samples.num_games} games confirmed",
        )


@dataclass(frozen=True)
class ReplayWindow:
    generations: int

    def __call__(
        self,
        scored: Sample[Positions],
        history: Sequence[Window],
        generation: int,
        rng: np.random.Generator,
    ) -> Window:
        del rng
        previous = history[-1] if history else ()
        recent = (p for p in previous if p.provenance.generation > generation - self.generations)
        verdict = scored.provenance.verdict
        confirmed = (scored,) if verdict is not None and verdict.passed else ()
        return (*recent, *confirmed)


@dataclass(frozen=True)
class TrainOnWindow:
    config: TrainConfig
    symmetries: Symmetries

    def __call__(self, incumbent: NetModel, kept: Window, rng: np.random.Generator) -> NetModel:
        positions = [sample.content for sample in kept]
        return train_net(incumbent, positions, self.config, self.symmetries, rng)


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
    pipeline: Pipeline[NetModel, Positions, Window] = Pipeline(
        initialize=RandomWeights(game, config.net),
        generate=SelfPlay(game, config.self_play, config.executor),
        verify=Referee(game),
        curate=ReplayWindow(config.train.replay_window),
        train=TrainOnWindow(config.train, symmetries),
        evaluate=evaluate,
        gate=build_gate(config.gate, CONTINUOUS_UPDATES),
        history_window=1,  # the newest window already holds every generation still in use
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


EXPERIMENT = Experiment(AlphaZeroConfig, build_arms, alphazero_claims)
