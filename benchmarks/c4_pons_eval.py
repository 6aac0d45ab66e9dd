"""Score a Connect Four run's newest saved agent on Pons' sets in full (1000 positions per
set), with Wilson intervals, next to our random-rollout MCTS-10000's rates.

    python benchmarks/c4_pons_eval.py RUN [--simulations 800] [--positions 1000]

Slow (minutes): the in-run evaluation scores the first 200 positions per set; this is the
number for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from selfimprove.core.store import RunStore
from selfimprove.games.evaluation import pons_metrics
from selfimprove.games.network import NetEvaluator
from selfimprove.games.pons import load_pons

MCTS_10000 = {"End-Easy": 0.1, "Middle-Easy": 0.4, "Middle-Medium": 3.8, "Beginning-Easy": 1.1}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--simulations", type=int, default=800)
    parser.add_argument("--positions", type=int, default=1000)
    parser.add_argument("--generation", type=int, help="default: the newest saved")
    args = parser.parse_args()
    store = RunStore.open(args.run, args.runs_dir)
    try:
        info = store.info()
        arm = store.arms()[0][0]
        at = store.last_generation(arm) if args.generation is None else args.generation
        snapshot = store.load_snapshot(arm, at)
        minutes = store.compute_minutes(arm)
    finally:
        store.close()
    if snapshot is None:
        raise SystemExit("no saved generation")
    generation, state = snapshot
    table = Path(info.config["evaluation"]["pons_table"])
    sets = [s.subset(slice(0, args.positions)) for _, s in sorted(load_pons(table).items())]
    start = time.perf_counter()
    metrics = pons_metrics(
        NetEvaluator.of(state.incumbent), sets, args.simulations, np.random.default_rng(0)
    )
    seconds = time.perf_counter() - start
    print(
        f"# run {info.id}, generation {generation} ({minutes[generation]:.0f} compute-minutes), "
        f"{args.simulations} simulations, {args.positions} positions per set, {seconds:.0f} s"
    )
    for label, bar in MCTS_10000.items():
        key = f"pons/{label}"
        for kind in ("search", "policy"):
            rate = metrics[f"{key}/{kind}_mistake_rate"]
            low = metrics[f"{key}/{kind}_mistake_rate_low"]
            high = metrics[f"{key}/{kind}_mistake_rate_high"]
            print(
                f"{label:15s} {kind:6s} {100 * rate:5.1f}% [{100 * low:.1f}, {100 * high:.1f}]"
                + (f"   MCTS-10000 (ours): {bar}%" if kind == "search" else "")
            )


if __name__ == "__main__":
    main()
