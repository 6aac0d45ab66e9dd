"""One tiny config per experiment kind, a generation or two in seconds: for tests that must
touch every loop (named streams, snapshots that hold every kind of state)."""

from __future__ import annotations

from typing import Any

REPLACE = [{"name": "replace", "policy": {"mix": "replace"}}]

TINY: dict[str, dict[str, Any]] = {
    "collapse.gaussian": {"num_seeds": 8, "monitor_every": 1, "arms": [{"policy": {}}]},
    "collapse.gmm": {"num_seeds": 2, "samples_per_generation": 50, "arms": [{}]},
    "collapse.regression": {"num_seeds": 8, "arms": [{}]},
    "collapse.fresh_data": {"num_seeds": 2, "dimension": 4, "samples_per_generation": 50},
    "collapse.zipf": {"num_seeds": 4, "vocabulary": 1000, "arms": [{"source": "iterate"}]},
    "collapse.ngram": {"train_documents": 200, "arms": REPLACE},
    "collapse.tiny_gpt": {
        "model": {"context": 33, "layers": 1, "heads": 2, "width": 32},
        "train_documents": 40,
        "test_documents": 10,
        "steps": 10,
        "training": {"batch_size": 8, "warmup_steps": 2},
        "arms": REPLACE,
    },
    "collapse.pretrained_lm": {
        "model": "tiny-random",
        "text": {"test_plays": ["macbeth"], "train_plays": ["hamlet"]},
        "document_tokens": 16,
        "train_documents": 16,
        "test_documents": 8,
        "histogram_documents": 8,
        "steps": 4,
        "training": {"batch_size": 4, "warmup_steps": 1},
        "lora": {"rank": 2},
        "arms": REPLACE,
    },
    "collapse.vae": {
        "steps": 20,
        "classifier_steps": 20,
        "monitor_samples": 100,
        "held_out_per_digit": 10,
        "model": {"hidden": 32, "latent": 4},
        "arms": REPLACE,
    },
    "distill.classifier": {
        "dataset": "digits",
        "teacher_hidden": [32],
        "teacher_steps": 50,
        "student_steps": 30,
        "num_seeds": 2,
        "arms": [{"hidden": [16], "data_share": 0.2}],
    },
    "distill.lm": {
        "teacher": {"layers": 1, "width": 16, "context": 17},
        "student": {"layers": 1, "width": 8, "heads": 2, "context": 17},
        "teacher_steps": 10,
        "student_steps": 10,
        "train_documents": 40,
        "validation_documents": 10,
        "test_documents": 10,
        "arms": [{"loss": "forward_kl"}],
    },
    "games.alphazero": {
        "self_play": {"games_per_generation": 8, "num_simulations": 8},
        "train": {"steps": 5, "batch_size": 16},
        "evaluation": {"num_simulations": 8, "random_games": 4},
    },
    "reasoning.star": {
        "train_digits": [1, 2],
        "eval_digits": [1, 2],
        "seed_per_length": 5,
        "problems_per_length": 10,
        "eval_per_length": 5,
        "validation_per_length": 5,
        "shape_eval_per_length": 5,
        "arms": ["star"],
        "model": {"context": 40, "layers": 1, "heads": 2, "width": 16},
        "train": {"seed_steps": 10, "min_steps": 5, "max_steps": 5, "batch_size": 8},
    },
    "reasoning.synthesis": {
        "seed_pairs": 2,
        "pool_pairs": 3,
        "pool_triples": 2,
        "held_out_pairs": 2,
        "held_out_triples": 2,
        "validation_triples": 2,
        "samples_per_spec": 1,
        "model": {"context": 64, "layers": 1, "heads": 2, "width": 16},
        "train": {"seed_steps": 10, "min_steps": 5, "max_steps": 5, "batch_size": 8},
    },
    "hacking.gridworld": {"world": "lagoon", "learners": 2, "episodes": 3},
    "failures.shift": {
        "num_seeds": 2,
        "real_examples": 100,
        "examples_per_generation": 100,
        "test_examples": 50,
        "traffic_examples": 50,
        "train": {"features": 1024, "epochs": 2, "initial_epochs": 2},
        "arms": [{"real_share": 0.3, "noise": True}],
    },
    "failures.forgetting": {
        "num_seeds": 2,
        "old_examples": 100,
        "new_examples": 20,
        "test_examples": 50,
        "traffic_examples": 50,
        "train": {"features": 1024, "epochs": 2, "initial_epochs": 2},
        "arms": [{"replay_share": 0.2}],
    },
    "failures.urn": {"num_seeds": 8, "monitor_after": 0},
    "failures.self_labelling": {"num_seeds": 4, "initial_labels": 50},
    "failures.facts": {"num_seeds": 1, "entities": 20, "planted_errors": 2, "steps": 20},
    "constitutional.sl_cai": {
        "model": "tiny-random",
        "train_red_team": 4,
        "train_helpful": 2,
        "validation": 2,
        "test_red_team": 3,
        "test_helpful": 2,
        "revisions": 2,
        "curve_rounds": 1,
        "answer_tokens": 8,
        "critique_tokens": 6,
        "steps": 2,
        "training": {"batch_size": 2, "warmup_steps": 1},
        "lora": {"rank": 2},
    },
}


def tiny(kind: str, generations: int = 1, **changes: Any) -> dict[str, Any]:
    """The tiny config of `kind` with `generations` and any other changes."""
    return {"kind": kind, "seed": 0, "generations": generations} | TINY[kind] | changes
