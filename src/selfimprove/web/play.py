"""Playing a game against an agent in the browser, statelessly: the page sends the whole
move list, the server replays it with the game's rules (every move checked), lets the agent
answer when the game is not over, and sends back the position.

Conventions: moves are 0-indexed actions (Connect Four: a column; tic-tac-toe: a cell
`row * 3 + col`); the first player's stones are +1 on the board sent back (the rules keep
boards from the mover's view, `games/rules.py`); `result` is `first`, `second` or `draw`.
The agent is the shipped net (`games/shipped.py`, loaded at the first move) or, where none
ships, random-rollout MCTS (`games/bots.py`); either searches `simulations` simulations a
move (400 random rollouts take about 0.15 s on Connect Four, 2 cores).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np

from selfimprove.games.bots import MctsBot
from selfimprove.games.rules import ConnectFour, Game, TicTacToe

GAMES = ("connect4", "tictactoe")
Result = Literal["first", "second", "draw"]
Agent = Callable[[np.ndarray], int]


class IllegalMoveError(ValueError):
    """A move list the rules refuse (a 400)."""


@dataclass(frozen=True)
class PlaySettings:
    """The agent people play: the shipped net when `shipped` and one exists, else
    random-rollout MCTS; either searches `simulations` simulations a move (tests use a few
    and no net: fast and weak)."""

    simulations: int = 400
    shipped: bool = True


@dataclass(frozen=True)
class Position:
    moves: tuple[int, ...]
    board: np.ndarray  # [R, C], +1 the first player's stones
    result: Result | None
    legal: tuple[int, ...]

    def as_json(self, agent_move: int | None) -> dict[str, Any]:
        return {
            "moves": list(self.moves),
            "agent_move": agent_move,
            "board": self.board.astype(int).tolist(),
            "to_move": len(self.moves) % 2,
            "result": self.result,
            "legal": list(self.legal),
        }


def replay(game: Game, moves: tuple[int, ...]) -> Position:
    """The position after `moves`, each checked against the rules."""
    board = game.initial(1)
    result: Result | None = None
    for ply, action in enumerate(moves):
        if result is not None:
            raise IllegalMoveError(f"move {ply + 1}: the game was already over")
        if not 0 <= action < game.num_actions or not game.legal_actions(board)[0, action]:
            raise IllegalMoveError(f"move {ply + 1} (action {action}) is not legal there")
        step = game.play(board, np.array([action]))
        board = step.boards
        if step.terminal[0]:
            mover: Result = "first" if ply % 2 == 0 else "second"
            other: Result = "second" if mover == "first" else "first"
            outcome = step.mover_result[0]
            result = mover if outcome > 0 else other if outcome < 0 else "draw"
    legal = () if result is not None else tuple(np.flatnonzero(game.legal_actions(board)[0]))
    sign = 1 if len(moves) % 2 == 0 else -1  # the canonical board is the mover's view
    return Position(moves, board[0] * sign, result, tuple(int(a) for a in legal))


def make_game(name: str) -> Game:
    """The rules `games.alphazero.make_game` gives, without importing the network code (and
    torch) until an agent needs it: the server starts in a second."""
    match name:
        case "connect4":
            return ConnectFour()
        case "tictactoe":
            return TicTacToe()
    raise ValueError(f"no game {name!r} to play here: {', '.join(GAMES)}")


@cache
def _agent(name: str, settings: PlaySettings) -> Agent:
    if settings.shipped:
        from selfimprove.games.shipped import agent_for  # may load a network (torch)

        shipped = agent_for(name, simulations=settings.simulations)
        if shipped is not None:
            return shipped
    game = make_game(name)
    bot = MctsBot(game, settings.simulations)

    def move(board: np.ndarray) -> int:
        # seeded by the position: the same position gets the same answer
        rng = np.random.default_rng([int(v) + 1 for v in board.ravel()])
        return int(bot(board[None], rng)[0])

    return move


def answer(name: str, moves: tuple[int, ...], settings: PlaySettings) -> dict[str, Any]:
    """Replay `moves`; unless the game is over, add the agent's move. As JSON."""
    game = make_game(name)
    if len(moves) > game.max_plies:
        raise IllegalMoveError(f"{len(moves)} moves: a game of {name} has at most {game.max_plies}")
    position = replay(game, moves)
    if position.result is not None:
        return position.as_json(None)
    canonical = position.board * (1 if len(moves) % 2 == 0 else -1)
    action = _agent(name, settings)(canonical.astype(np.int8))
    return replay(game, (*moves, action)).as_json(action)
