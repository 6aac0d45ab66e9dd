"""Where does a Connect Four run's learning stall? Raw-policy mistake rates on Pons' sets
(all positions) for: the run's net; its own N-simulation search (what the policy is trained
to imitate); the net trained further at a lower learning rate on its replay window; and fresh
nets of other sizes trained on that window (a capacity probe).

    python benchmarks/c4_plateau_probe.py RUN [--generation N] [--target-simulations 100]
        [--more-steps 2000 --more-lr 1e-4] [--fresh 4x32 4x64 --fresh-steps 3000]

Minutes per fresh 4x64 net (541 s for 3000 steps on this machine).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from selfimprove.core.config import ConfigError
from selfimprove.core.store import RunNotFoundError
from selfimprove.experiments import newest_state
from selfimprove.games.mcts import SearchConfig, normalize, search
from selfimprove.games.network import NetEvaluator, NetModel, NetSpec, initial_model
from selfimprove.games.pons import SET_LABELS, PonsSet, load_pons
from selfimprove.games.rules import ConnectFour
from selfimprove.games.training import TrainConfig, mirror_columns, train_net

GAME = ConnectFour()
ORDER = ("End-Easy", "Middle-Easy", "Middle-Medium", "Beginning-Easy")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--generation", type=int, help="default: the newest saved")
    parser.add_argument("--target-simulations", type=int, default=100)
    parser.add_argument("--more-steps", type=int, default=2000)
    parser.add_argument("--more-lr", type=float, default=1e-4)
    parser.add_argument("--fresh", nargs="*", default=["4x32", "4x64"], help="BLOCKSxCHANNELS")
    parser.add_argument("--fresh-steps", type=int, default=3000)
    args = parser.parse_args()
    try:
        saved = newest_state(args.run, args.runs_dir, at=args.generation)
    except (ConfigError, RunNotFoundError) as error:
        parser.exit(2, f"{error}\n")
    info, generation, model = saved.info, saved.generation, saved.state.incumbent
    window = [sample.content for sample in saved.state.history[-1]]  # stamped positions
    table = Path(info.config["evaluation"]["pons_table"])
    sets = {SET_LABELS[name]: s for name, s in load_pons(table).items()}
    train = info.config["train"]
    print(
        f"# run {info.id}, generation {generation}, window of "
        f"{sum(len(p.values) for p in window):,} positions; mistakes " + " / ".join(ORDER)
    )
    print(f"{'raw policy':58s} {rates(model, sets)}")
    print(
        f"{f'its own {args.target_simulations}-simulation search':58s} "
        f"{rates(model, sets, args.target_simulations)}"
    )
    rng = np.random.default_rng(0)

    def trained(start: NetModel, steps: int, lr: float) -> NetModel:
        config = TrainConfig(
            steps=steps,
            batch_size=train["batch_size"],
            learning_rate=lr,
            replay_window=train["replay_window"],
            value_mix=train["value_mix"],
        )
        return train_net(start, window, config, mirror_columns, rng)

    started = time.perf_counter()
    more = trained(model, args.more_steps, args.more_lr)
    label = f"+{args.more_steps} steps at lr {args.more_lr:g} on the window"
    print(f"{label:58s} {rates(more, sets)}   {time.perf_counter() - started:.0f} s")
    for size in args.fresh:
        blocks, channels = (int(x) for x in size.split("x"))
        spec = NetSpec(kind="resnet", blocks=blocks, channels=channels)
        started = time.perf_counter()
        fresh = initial_model(spec, GAME.rows, GAME.cols, GAME.num_actions, rng)
        fresh = trained(fresh, args.fresh_steps, train["learning_rate"])
        label = f"fresh {size}, {args.fresh_steps} steps on the window"
        print(f"{label:58s} {rates(fresh, sets)}   {time.perf_counter() - started:.0f} s")


def rates(model: NetModel, sets: dict[str, PonsSet], simulations: int = 0) -> str:
    """Mistake rates per set of the raw policy, or of a plain search with `simulations`."""
    evaluator, out = NetEvaluator.of(model), []
    for label in ORDER:
        boards = sets[label].boards
        if simulations:
            result = search(
                GAME, evaluator, boards, SearchConfig(simulations), np.random.default_rng(0)
            )
            actions = result.best_action
        else:
            priors, _ = evaluator(boards, np.random.default_rng(0))
            actions = normalize(priors, GAME.legal_actions(boards)).argmax(axis=1)
        out.append(f"{100 * sets[label].mistakes(actions).mean():4.1f}%")
    return " / ".join(out)


if __name__ == "__main__":
    main()
