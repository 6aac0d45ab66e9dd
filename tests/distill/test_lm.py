"""Token-level distillation on a tiny config: every loss trains, the student is smaller than
its teacher, a distilled student learns more than one trained on a few steps of data alone,
and a resumed iterated run equals an uninterrupted one (timings aside)."""

from __future__ import annotations

from pathlib import Path

from selfimprove.core.store import RunStore
from selfimprove.experiments import claims_for, load_config, resume_run, start_run
from tests.conftest import CONFIGS

TINY = [
    "teacher={layers: 2, width: 48, context: 33}",
    "student={layers: 1, width: 16, context: 33}",
    "teacher_steps=150",
    "student_steps=60",
    "train_documents=120",
    "test_documents=30",
]


def untimed(run_dir: Path) -> dict[str, dict[int, dict[str, float]]]:
    store = RunStore.open(run_dir)
    return {
        arm: {
            g: {k: v for k, v in m.items() if not k.startswith("timing/")}
            for g, m in store.metrics(arm).items()
        }
        for arm, _ in store.arms()
    }


def test_every_kd_loss_trains_a_smaller_student(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "distill" / "lm.yaml", TINY)
    run = start_run(config, tmp_path)
    first = {arm: series[0] for arm, series in untimed(run.run_dir).items()}
    assert set(first) == {
        "data",
        "forward_kl",
        "reverse_kl",
        "jsd(beta=0.5)",
        "forward_kl, on-policy 0.5",
        "seq_kd",
        "forward_kl, top-8 stored",
    }
    uniform = 4.58  # ln 98: a model that learned nothing
    for metrics in first.values():
        assert metrics["model/parameters"] < metrics["model/teacher_parameters"]
        assert metrics["eval/test_nll"] < uniform
    assert first["forward_kl"]["eval/test_nll"] < first["data"]["eval/test_nll"]
    store = RunStore.open(run.run_dir)
    assert len(claims_for(config, store)) == 6
    # eight stored log-probabilities per position carry most of what the full teacher does
    top_k = first["forward_kl, top-8 stored"]["eval/test_nll"]
    assert abs(top_k - first["forward_kl"]["eval/test_nll"]) < 0.1


def test_iterated_lm_distillation_resumes_exactly(tmp_path: Path) -> None:
    config = load_config(
        CONFIGS / "distill" / "lm.yaml", [*TINY, "generations=2", "arms=[{loss: forward_kl}]"]
    )
    whole = start_run(config, tmp_path / "whole")
    cut = start_run(config, tmp_path / "cut", stop_after=1)
    assert untimed(resume_run(cut.run_dir).run_dir) == untimed(whole.run_dir)
