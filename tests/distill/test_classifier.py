"""Classifier distillation on a small config: soft labels carry more than hard labels in the
low-data regime, the bias correction helps an unseen class, iterated distillation runs and
resumes exactly (timing metrics aside)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfimprove.core.engine import Arm, Engine
from selfimprove.core.seeding import stage_rng
from selfimprove.core.store import RunStore
from selfimprove.distill.classifier import Mlp
from selfimprove.distill.distill import Students
from selfimprove.experiments import (
    CODECS,
    build_arms,
    claims_for,
    load_config,
    parse_config,
    resume_run,
    start_run,
)
from selfimprove.reports.html import write_run_report
from tests.conftest import CONFIGS
from tests.tiny import tiny

SMALL = [  # the recipe's teacher and students, plus a removed-class arm
    "arms=[{hidden: [64], labels: hard, data_share: 0.06},"
    " {hidden: [64], labels: soft, temperature: 10, data_share: 0.06},"
    " {hidden: [64], labels: soft, temperature: 2, data_share: 0.06},"
    " {hidden: [64], labels: soft, temperature: 10, data_share: 0.5, removed_class: 3}]",
]


def table(run_dir: Path) -> dict[str, dict[int, dict[str, float]]]:
    store = RunStore.open(run_dir)
    return {arm: store.metrics(arm) for arm, _ in store.arms()}


def test_soft_labels_beat_hard_labels_with_little_data(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "distill" / "low_data_digits.yaml", SMALL)
    run = start_run(config, tmp_path)
    first = {arm: series[0] for arm, series in table(run.run_dir).items()}
    hard, soft = first["64, hard, 6% data"], first["64, soft T=10, 6% data"]
    assert soft["eval/accuracy_low"] > hard["eval/accuracy_high"]  # beyond the seed spread
    assert hard["eval/teacher_accuracy"] > 0.9 and hard["model/parameters"] == 64 * 64 + 64 + 650
    assert hard["timing/latency_ms"] > 0 and hard["timing/throughput"] > 0
    unseen = first["64, soft T=10, 50% data, no 3"]
    assert unseen["eval/unseen_class_corrected_mean"] > unseen["eval/unseen_class_accuracy_mean"]
    store = RunStore.open(run.run_dir)
    texts = [c.text for c in claims_for(config, store)]
    assert any("beats 64, hard, 6% data" in t for t in texts)
    assert any("bias correction" in t for t in texts)
    from selfimprove.reports.html import write_run_report

    page = write_run_report(store).read_text()
    assert 'alt="Accuracy against temperature"' in page  # accuracy against T per student size


def test_iterated_distillation_resumes_exactly_apart_from_timings(tmp_path: Path) -> None:
    config = load_config(
        CONFIGS / "distill" / "low_data_digits.yaml",
        [
            *SMALL[:3],
            "generations=2",
            "arms=[{hidden: [32], labels: soft, temperature: 4, data_share: 0.3}]",
        ],
    )
    whole = table(start_run(config, tmp_path / "whole").run_dir)
    cut = start_run(config, tmp_path / "cut", stop_after=1)
    resumed = table(resume_run(cut.run_dir).run_dir)

    def untimed(t: dict[str, dict[int, dict[str, float]]]) -> dict[str, object]:
        return {
            arm: {
                g: {k: v for k, v in m.items() if not k.startswith("timing/")} for g, m in s.items()
            }
            for arm, s in t.items()
        }

    assert untimed(resumed) == untimed(whole)
    assert sorted(next(iter(whole.values()))) == [0, 1, 2]


def test_the_three_datasets_load_offline_with_a_stratified_split() -> None:
    import numpy as np

    from selfimprove.distill.classifier import load, split

    shapes = {name: load(name)[0].shape for name in ("mnist_5k", "digits", "mnist1d")}
    assert shapes == {"mnist_5k": (5000, 784), "digits": (1797, 64), "mnist1d": (5000, 40)}
    x, _ = load("mnist1d")
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1.0) < 1e-3  # standardized
    data = split("digits", 0.25, np.random.default_rng(0))
    assert data.train_x.shape[0] + data.test_x.shape[0] == 1797
    _, y = load("digits")
    held_out = np.bincount(data.test_y)
    assert held_out.tolist() == [round(0.25 * n) for n in np.bincount(y)]  # stratified


def test_a_removed_class_the_data_lacks_is_a_config_error() -> None:
    import pytest

    from selfimprove.core.config import ConfigError
    from selfimprove.experiments import build_arms

    config = load_config(
        CONFIGS / "distill" / "low_data_digits.yaml", ["arms=[{removed_class: 12}]"]
    )
    with pytest.raises(ConfigError, match="removed_class 12: digits has classes 0-9"):
        build_arms(config)


def test_the_validation_split_is_held_out_from_training_and_the_test() -> None:
    import numpy as np

    from selfimprove.distill.classifier import load, split

    data = split("digits", 0.25, np.random.default_rng(0), validation_share=0.1)
    x, _ = load("digits")
    rows = lambda a: {r.tobytes() for r in a}  # noqa: E731
    assert data.train_x.shape[0] + data.val_x.shape[0] + data.test_x.shape[0] == x.shape[0]
    assert not rows(data.val_x) & rows(data.test_x) and not rows(data.val_x) & rows(data.train_x)
    assert 0.09 < data.val_x.shape[0] / (data.train_x.shape[0] + data.val_x.shape[0]) < 0.11


@dataclass(frozen=True)
class Worse:
    """The real train stage, then every student's weights zeroed: a candidate made worse."""

    train: Any

    def __call__(self, incumbent: Students, kept: Any, rng: np.random.Generator) -> Students:
        trained = self.train(incumbent, kept, rng)
        zeroed = tuple(
            Mlp(s.widths, {k: torch.zeros_like(v) for k, v in s.state.items()})
            for s in trained.students
        )
        return dataclasses.replace(trained, students=zeroed)


def test_the_gate_rejects_a_worse_student_and_the_incumbent_carries_on_unchanged(
    tmp_path: Path,
) -> None:
    """The no-regression gate in a real loop: each deliberately worse candidate is rejected
    with its reason, the incumbent after generation 2 is generation 0's model bit for bit,
    and the report's decision table says so."""
    config = parse_config(tiny("distill.classifier", 2, checkpoint_every=1), "test")
    store = RunStore.create(tmp_path, config.kind, config.model_dump(mode="json"), 0, "test")
    arms = [
        Arm(a.name, dataclasses.replace(a.pipeline, train=Worse(a.pipeline.train)))
        for a in build_arms(config)
    ]
    assert Engine(config, store, codecs=CODECS).run(arms) == "finished"
    arm = arms[0].name
    decisions, series = store.decisions(arm), store.metrics(arm)
    for generation in (1, 2):
        action, reason = decisions[generation]
        assert action == "reject", reason
        assert reason.startswith("val/accuracy_mean") and "(generation 0)" in reason
        assert series[generation]["val/accuracy_mean"] < series[0]["val/accuracy_mean"] - 0.01
    saved = store.load_snapshot(arm, 2, CODECS)
    assert saved is not None
    state = saved[1]
    assert state.incumbent_generation == 0 and state.metrics == series[0]
    fresh, _ = arms[0].pipeline.initialize(stage_rng(config.seed, 0, "initialize"))
    for carried, made in zip(state.incumbent.students, fresh.students, strict=True):
        assert all(torch.equal(carried.state[k], made.state[k]) for k in made.state)
    report = write_run_report(store, claims_for(config, store)).read_text()
    assert "2 reject" in report and "worse by" in report
    store.close()


def test_a_gate_on_an_empty_validation_set_is_refused_not_silently_off(tmp_path: Path) -> None:
    import pytest

    from selfimprove.core.config import ConfigError

    config = parse_config(tiny("distill.classifier", 1, validation_share=0.0), "test")
    with pytest.raises(ConfigError, match=r"gate\.metric: val/accuracy_mean is nan"):
        start_run(config, tmp_path)
