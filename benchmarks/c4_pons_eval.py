"""Score a Connect Four run's saved agent on Pons' sets in full (1000 positions per set), with
Wilson intervals, next to our random-rollout MCTS-10000's rates; optionally play it against
OpenSpiel's C++ MCTS (extra 'peers'), or score OpenSpiel's MCTS itself on the sets.

    python benchmarks/c4_pons_eval.py RUN [--simulations 800] [--positions 1000]
        [--sets Middle-Medium ...] [--generation N] [--peers 1000 10000 --pairs 20]
    python benchmarks/c4_pons_eval.py --openspiel 1000 [--positions 1000]

Slow (minutes): the in-run evaluation scores the first 200 positions per set; this is the
number for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from contextlib import closing
from pathlib import Path

import numpy as np

from selfimprove.core.config import ConfigError
from selfimprove.core.store import RunNotFoundError, RunStore
from selfimprove.experiments import newest_state
from selfimprove.games.evaluation import peer_metrics, pons_metrics
from selfimprove.games.network import NetEvaluator
from selfimprove.games.peers import OpenSpielMcts
from selfimprove.games.pons import SET_LABELS, PonsSet, load_pons, wilson_interval

MCTS_10000 = {"End-Easy": 0.1, "Middle-Easy": 0.4, "Middle-Medium": 3.8, "Beginning-Easy": 1.1}
TABLE = Path("../shared/data/connect4/pons_move_scores.tsv")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", nargs="?")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--simulations", type=int, default=800)
    parser.add_argument("--positions", type=int, default=1000)
    parser.add_argument("--sets", nargs="+", choices=list(MCTS_10000), default=list(MCTS_10000))
    parser.add_argument("--generation", type=int, help="default: the newest saved")
    parser.add_argument("--peers", type=int, nargs="*", default=[], help="OpenSpiel MCTS budgets")
    parser.add_argument("--pairs", type=int, default=20, help="paired games per peer")
    parser.add_argument("--openspiel", type=int, help="score OpenSpiel's MCTS-N, not a run")
    parser.add_argument("--solver", action="store_true", help="the agent searches with MCTS-Solver")
    args = parser.parse_args()
    if args.openspiel:
        sets = _sets(TABLE, args.sets, args.positions)
        score_openspiel(sets, args.openspiel)
        return
    if args.run is None:
        parser.error("give a RUN or --openspiel N")
    try:
        saved = newest_state(args.run, args.runs_dir, at=args.generation)
    except (ConfigError, RunNotFoundError) as error:
        parser.exit(2, f"{error}\n")
    info, generation, model = saved.info, saved.generation, saved.state.incumbent
    with closing(RunStore.open(args.run, args.runs_dir)) as store:
        minutes = store.compute_minutes(saved.arm)
    sets = _sets(Path(info.config["evaluation"]["pons_table"]), args.sets, args.positions)
    start = time.perf_counter()
    metrics = pons_metrics(
        NetEvaluator.of(model), sets, args.simulations, np.random.default_rng(0), args.solver
    )
    print(
        f"# run {info.id}, generation {generation} ({minutes[generation]:.0f} minutes), "
        f"{args.simulations} simulations{' with MCTS-Solver' if args.solver else ''}, "
        f"{args.positions} positions per set, "
        f"{time.perf_counter() - start:.0f} s"
    )
    for label in args.sets:
        for kind in ("search", "policy"):
            key = f"pons/{label}/{kind}_mistake_rate"
            print(
                f"{label:15s} {kind:6s} {_rate(metrics[key], metrics[key + '_low'], metrics[key + '_high'])}"
                + (f"   MCTS-10000 (ours): {MCTS_10000[label]}%" if kind == "search" else "")
            )
    if args.peers:
        start = time.perf_counter()
        peers = peer_metrics(
            NetEvaluator.of(model),
            args.peers,
            args.pairs,
            args.simulations,
            np.random.default_rng(1),
            args.solver,
        )
        print(
            f"# against OpenSpiel's MCTS, {args.pairs} paired games each, {time.perf_counter() - start:.0f} s"
        )
        for sims in args.peers:
            score = peers[f"peers/score_vs_openspiel_mcts{sims}"]
            print(
                f"OpenSpiel MCTS-{sims}: score {score:.3f} (Elo gap {peers[f'peers/elo_gap_vs_openspiel_mcts{sims}']:+.0f})"
            )


def score_openspiel(sets: list[PonsSet], simulations: int) -> None:
    player, rng = OpenSpielMcts(simulations), np.random.default_rng(0)
    for pons_set in sets:
        start = time.perf_counter()
        mistakes = int(pons_set.mistakes(player(pons_set.boards, rng)).sum())
        low, high = wilson_interval(mistakes, len(pons_set.boards))
        label = SET_LABELS[pons_set.name]
        print(
            f"OpenSpiel MCTS-{simulations} {label:15s} "
            f"{_rate(mistakes / len(pons_set.boards), low, high)}   "
            f"{time.perf_counter() - start:.0f} s"
        )


def _sets(table: Path, labels: list[str], positions: int) -> list[PonsSet]:
    by_label = {SET_LABELS[name]: s for name, s in load_pons(table).items()}
    return [by_label[label].subset(slice(0, positions)) for label in labels]


def _rate(rate: float, low: float, high: float) -> str:
    return f"{100 * rate:5.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


if __name__ == "__main__":
    main()
