"""Score a finished SL-CAI run's models again with today's held-out meters (a meter added
after a run was made is measured on its saved adapters, not guessed from its exhibits).

    .venv/bin/python benchmarks/cai_rescore.py RUN_DIR [RUN_DIR ...] [--generations 0,2]

For each run and generation: the model's greedy first answers to the held-out prompts, every
`held_out_metrics` value, the most common three-word opening, and two answers. Generation 0
is the pretrained model itself (no snapshot needed); others are read from the run's
snapshots (the two newest are kept).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from selfimprove.constitutional.chains import Budget, answer
from selfimprove.constitutional.checkers import opening_share
from selfimprove.constitutional.sl_cai import (
    CaiModel,
    Prompts,
    SlCaiConfig,
    held_out_metrics,
    runtime,
)
from selfimprove.experiments import newest_state, parse_config

torch.set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--generations", default="0,2")
    args = parser.parse_args()
    for run in args.runs:
        saved = newest_state(run.name, run.parent)
        config = parse_config(saved.info.config, run.name)
        assert isinstance(config, SlCaiConfig)
        prompts = Prompts.of(config)
        greedy = Budget(config.answer_tokens, config.critique_tokens, 0.0)
        for generation in (int(g) for g in args.generations.split(",")):
            if generation == 0:
                model = CaiModel(None)
            else:
                state = newest_state(run.name, run.parent, at=generation).state
                model = state.incumbent
            chat = runtime(config).incumbent(model)
            zero = np.random.default_rng(0)
            red = answer(chat, prompts.test_red_team, greedy, zero)
            helpful = answer(chat, prompts.test_helpful, greedy, zero)
            metrics = held_out_metrics(red, helpful)
            phrase, share = opening_share([c.answer for c in red])
            print(f"\n{run.name} generation {generation}")
            for key, value in sorted(metrics.items()):
                print(f"  {key:32} {value:.3f}")
            print(f"  most common opening: {phrase!r} ({share:.3f})")
            for chain in red[:2]:
                print(f"  > {chain.answer[:160]!r}")


if __name__ == "__main__":
    main()
