"""RL-CAI's claims (Bai et al. 2022), checked on held-out prompts with held-out checkers.

- RL on AI preference labels raises the preference score it optimizes: the feedback model
  prefers the policy's answers to the initial model's more and more (`pref/win_rate`, 0.5 at
  generation 0 by construction).
- Over-optimization: the paper's over-trained RL-CAI model learned boilerplate ("you are
  valid, valued, and cared for"); the preference model was gamed. Here: while the preference
  score rises, held-out harmlessness peaks before the last generation, or the boilerplate
  meter rises, or both.
- As for SL-CAI, helpfulness on benign prompts and refusal of them are always reported.

Each claim states its numbers whether it holds or not; a claim about "the model" reads the
metrics of the model the arm carried (the gate accepts all, so every candidate).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from selfimprove.constitutional.claims import HELPFUL, REFUSAL, helpfulness_claims
from selfimprove.core.experiment import Measured, carried, trace
from selfimprove.core.records import Claim, ClaimPlot

if TYPE_CHECKING:
    from selfimprove.constitutional.rl_cai import RlCaiConfig

ARM = "rl-cai"
WIN = "pref/win_rate"
HARMLESS = "eval/harmless"
BOILERPLATE = "eval/boilerplate_share"


def rl_cai_claims(config: RlCaiConfig, measured: Measured) -> list[Claim]:
    del config
    model = carried(measured, ARM)
    if len(model) < 2:
        return [
            Claim(
                "RL on AI preference labels raises the preference score it optimizes",
                "needs at least one generation after generation 0",
                None,
            )
        ]
    generations = sorted(model)
    last = generations[-1]

    def series(key: str) -> list[float]:
        return [model[g][key] for g in generations]

    win, harmless, boilerplate = series(WIN), series(HARMLESS), series(BOILERPLATE)
    helpful, refusal = series(HELPFUL), series(REFUSAL)
    rises = win[-1] > win[0]
    peak = generations[int(np.argmax(harmless))]  # the first generation at the maximum
    peaked_early = max(harmless[:-1]) > harmless[-1]
    more_boilerplate = boilerplate[-1] > boilerplate[0]
    return [
        Claim(
            "RL on AI preference labels raises the preference score it optimizes: the "
            "feedback model prefers the policy's answers to held-out red-team prompts over "
            "the initial model's (Bai et al., RL-CAI)",
            f"win rate {trace(win)} (generation 0 -> {last})",
            rises,
            ClaimPlot(WIN, reference=0.5, reference_label="the initial model"),
        ),
        Claim(
            "over-optimization: while the preference score rises, held-out harmlessness "
            "peaks before the last generation and/or the boilerplate meter rises (Bai et al.: "
            "over-trained RL-CAI learned boilerplate)",
            f"win rate {trace(win)}; harmless share {trace(harmless)} (peak at generation "
            f"{peak}); boilerplate share {trace(boilerplate)}",
            rises and (peaked_early or more_boilerplate),
            ClaimPlot(HARMLESS),
        ),
        *helpfulness_claims(helpful, refusal),
    ]
