"""A brute-force line finder: the tests' reference for the games' compiled win checks."""

import numpy as np


def has_line(stones: np.ndarray, length: int) -> np.ndarray:
    """Per `[B, R, C]` boolean board: are `length` cells in a row (any direction) all True?"""
    found = np.zeros(len(stones), dtype=bool)
    rows, cols = stones.shape[1:]
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        for r in range(rows):
            for c in range(cols):
                cells = [(r + k * dr, c + k * dc) for k in range(length)]
                if all(0 <= y < rows and 0 <= x < cols for y, x in cells):
                    found |= np.stack([stones[:, y, x] for y, x in cells], axis=1).all(axis=1)
    return found
