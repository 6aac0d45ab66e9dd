"""Write a games.alphazero run's newest saved net as the agent that ships with the package
(`src/selfimprove/games/agents/<game>.json` + `.npz`), with where it came from and its
newest measured Pons mistake rates.

    .venv/bin/python benchmarks/ship_agent.py RUN --runs-dir DIR --command "how it was trained"
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from selfimprove.core.store import RunStore
from selfimprove.experiments import newest_state
from selfimprove.games.shipped import write_agent


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--command", required=True, help="the command that trained it")
    args = parser.parse_args()
    saved = newest_state(args.run, args.runs_dir)
    game = saved.info.config["game"]
    store = RunStore.open(args.run, args.runs_dir)
    series = store.metrics(saved.arm)
    store.close()
    measured = [
        g
        for g in sorted(series)
        if g <= saved.generation
        and any(k.startswith("pons/") and not math.isnan(v) for k, v in series[g].items())
    ]
    pons = {}
    if measured:
        at = measured[-1]
        pons = {
            "generation": at,
            **{
                k: v
                for k, v in series[at].items()
                if k.startswith("pons/") and k.endswith("mistake_rate")
            },
        }
    about = {
        "run": saved.info.id,
        "generation": saved.generation,
        "command": args.command,
        "config": saved.info.config,
        "pons": pons,
    }
    path = write_agent(game, saved.state.incumbent, about)
    size = sum(p.stat().st_size for p in path.parent.glob(f"{game}.*"))
    print(
        f"{path} ({size / 1e6:.2f} MB), generation {saved.generation}, Pons at {pons.get('generation')}"
    )


if __name__ == "__main__":
    main()
