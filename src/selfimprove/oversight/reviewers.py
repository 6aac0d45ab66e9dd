"""Simulated reviewers: a person played by the computer, so every oversight experiment and
test runs unattended. It sees the truth (the loop's own stricter check of the item, which the
loop's verifier does not make), reports it with probability `accuracy`, and with probability
`lenient` accepts an item it would have rejected (a reviewer who waves things through)."""

from __future__ import annotations

from dataclasses import dataclass

from selfimprove.core.config import SimulatedReviewerConfig


@dataclass(frozen=True)
class SimulatedReviewer:
    config: SimulatedReviewerConfig

    @property
    def name(self) -> str:
        return self.config.name

    def judge(
        self, truth: bool, draws: tuple[float, float], reason: str = "incorrect"
    ) -> tuple[str, str | None]:
        """(action, reason) for an item whose true answer is `truth`, given two uniform draws
        (drawn by the caller for every item, so a resumed generation sees the same ones)."""
        says_right = truth if draws[0] < self.config.accuracy else not truth
        if not says_right and draws[1] < self.config.lenient:
            says_right = True
        return ("accept", None) if says_right else ("reject", reason)
