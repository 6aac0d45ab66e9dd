"""Connect Four ground truth: Pascal Pons' test sets with the exact score of every move.

Reads `pons_move_scores.tsv` (see `shared/data/connect4/README.md`): one row per position,
1-indexed move sequence, and the score of each column for the player to move (`.` = full).
A **mistake** is a move whose score's sign is worse than the best legal move's sign; the
mistake rate per set is what AlphaZero.jl and REFERENCES.md report.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from selfimprove.core.config import ConfigError
from selfimprove.games.rules import ConnectFour, boards_from_moves

SET_LABELS = {
    "Test_L3_R1": "End-Easy",
    "Test_L2_R1": "Middle-Easy",
    "Test_L2_R2": "Middle-Medium",
    "Test_L1_R1": "Beginning-Easy",
}


@dataclass(frozen=True)
class PonsSet:
    name: str
    sequences: tuple[str, ...]  # 1-indexed columns, as in Pons' files
    move_scores: np.ndarray  # [N, 7], nan where the column is full
    boards: np.ndarray  # [N, 6, 7] canonical boards (player to move = +1), built once at load

    def subset(self, rows: slice) -> PonsSet:
        """The positions of `rows` only, e.g. `slice(0, 200)` for the first 200."""
        return PonsSet(self.name, self.sequences[rows], self.move_scores[rows], self.boards[rows])

    def mistakes(self, actions: np.ndarray) -> np.ndarray:
        """Boolean `[N]`: the chosen column's outcome sign is worse than the best one's."""
        signs = np.sign(self.move_scores)
        best = np.nanmax(signs, axis=1)
        chosen = signs[np.arange(len(actions)), actions]
        if np.isnan(chosen).any():
            raise ValueError("an action plays into a full column")
        return chosen < best


def load_pons(path: Path) -> dict[str, PonsSet]:
    """Every set in the move-score table, keyed by file name (`Test_L2_R2`, ...)."""
    if not path.is_file():
        raise ConfigError(f"Pons move-score table not found: {path}")
    rows: dict[str, tuple[list[str], list[list[float]]]] = {}
    with path.open() as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            sequences, scores = rows.setdefault(row["set"], ([], []))
            sequences.append(row["sequence"])
            scores.append(
                [math.nan if row[f"col{k}"] == "." else float(row[f"col{k}"]) for k in range(1, 8)]
            )
    sets = {}
    for name, (sequences, scores) in rows.items():
        moves = [[int(c) - 1 for c in sequence] for sequence in sequences]
        boards = boards_from_moves(ConnectFour(), moves)
        sets[name] = PonsSet(name, tuple(sequences), np.array(scores), boards)
    return sets


def wilson_interval(mistakes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial rate (sensible at 0 mistakes, unlike +-2 SE)."""
    if total == 0:
        return (0.0, 1.0)
    rate = mistakes / total
    centre = (rate + z * z / (2 * total)) / (1 + z * z / total)
    half = (
        z * math.sqrt(rate * (1 - rate) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    )
    return (max(0.0, centre - half), min(1.0, centre + half))
