"""The claims each self-play run tests, checked against the metrics it stored."""

from __future__ import annotations

from typing import TYPE_CHECKING

from selfimprove.core.experiment import Measured, Table
from selfimprove.core.records import Claim, ClaimPlot

if TYPE_CHECKING:  # the method file imports these claims for its Experiment record
    from selfimprove.games.alphazero import AlphaZeroConfig


def alphazero_claims(config: AlphaZeroConfig, measured: Measured) -> list[Claim]:
    """Tic-tac-toe: perfect play from random weights, checked exhaustively against minimax."""
    table = measured.metrics
    if config.game == "connect4":
        return connect4_claims(config, table)
    found = []
    for arm, series in table.items():
        if config.game != "tictactoe" or not series:
            continue
        first, last = series[0], series[max(series)]
        found.append(
            Claim(
                f"{arm}: from random weights, no mistake against minimax in any position reachable "
                "in play (its own moves, every opponent reply, as X and as O)",
                f"{last['eval/in_play_mistakes']:g} mistakes in {last['eval/in_play_positions']:g} "
                f"positions (generation 0: {first['eval/in_play_mistakes']:g})",
                last["eval/in_play_mistakes"] == 0,
                ClaimPlot("eval/in_play_mistakes", (arm,), None, 0.0, "perfect play: 0"),
            )
        )
        found.append(
            Claim(
                f"{arm}: it never loses, against any opponent (every reply tried)",
                f"{last['eval/in_play_losses']:g} losing lines; {last['eval/losses_vs_random']:g} "
                f"losses in {config.evaluation.random_games} games against a random player",
                last["eval/in_play_losses"] == 0 and last["eval/losses_vs_random"] == 0,
            )
        )
        found.append(
            Claim(
                f"{arm}: learning happened on all 4,520 non-terminal positions (most never arise in "
                "its own play): search mistakes at least halved",
                f"search {first['eval/search_mistakes']:g} -> {last['eval/search_mistakes']:g}, "
                f"raw policy {first['eval/policy_mistakes']:g} -> {last['eval/policy_mistakes']:g}",
                last["eval/search_mistakes"] <= 0.5 * first["eval/search_mistakes"],
                ClaimPlot(
                    "eval/search_mistakes", (arm,), (None, 0.5 * first["eval/search_mistakes"])
                ),
            )
        )
    return found


# REFERENCES.md: random-rollout MCTS-10000's mistake rates on the Pons sets (the issue's bar).
_MCTS_10000 = {"End-Easy": 0.0, "Middle-Easy": 0.7, "Middle-Medium": 4.3, "Beginning-Easy": 2.0}


def connect4_claims(config: AlphaZeroConfig, table: Table) -> list[Claim]:
    """Connect Four: the search against MCTS-10000 on every Pons set, at the run's own scoring
    budget (said in the evidence: the bar's own is 10,000 simulations on all 1,000 positions,
    `benchmarks/c4_pons_eval.py`); the ladder's trend."""
    found = []
    scoring = config.evaluation
    budget = (
        f"{scoring.num_simulations:,} simulations{' + solver' if scoring.solver else ''}, "
        f"first {scoring.pons_positions:,} positions"
    )
    for arm, series in table.items():
        for label, bar in _MCTS_10000.items():
            key = f"pons/{label}/search_mistake_rate"
            scored = [g for g in sorted(series) if key in series[g]]  # Pons every N generations
            if scored:
                row = series[scored[-1]]
                rate, low, high = (100 * row[key + end] for end in ("", "_low", "_high"))
                found.append(
                    Claim(
                        f"{arm}: the search makes no more mistakes than random-rollout MCTS-10000 on {label} ({bar:g}%)",
                        f"{rate:.1f}% [{low:.1f}, {high:.1f}] at generation {scored[-1]} ({budget})",
                        rate <= bar,
                        ClaimPlot(key, (arm,), (None, bar / 100), bar / 100, "MCTS-10000"),
                    )
                )
        ladder = [g for g in sorted(series) if "ladder/elo" in series[g]]
        if len(ladder) > 1:
            first, newest = series[ladder[0]], series[ladder[-1]]
            found.append(
                Claim(
                    f"{arm}: Elo on the MCTS ladder rose beyond both 95% intervals",
                    f"{first['ladder/elo']:.0f} [{first['ladder/elo_low']:.0f}, {first['ladder/elo_high']:.0f}] -> "
                    f"{newest['ladder/elo']:.0f} [{newest['ladder/elo_low']:.0f}, {newest['ladder/elo_high']:.0f}]",
                    newest["ladder/elo_low"] > first["ladder/elo_high"],
                )
            )
    return found
