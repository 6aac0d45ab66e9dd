"""Execution-filtered synthesis on the loop: only programs that pass in the sandbox are
kept, each verdict names its isolation, and kept data exports as TRL prompt/completion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from selfimprove.cli import main
from selfimprove.core.store import RunStore
from selfimprove.experiments import CODECS, parse_config, start_run
from selfimprove.reasoning.programs import Spec, all_specs, extract_program
from selfimprove.reasoning.sandbox import Sandbox
from selfimprove.reasoning.synthesis import TOKENIZER, SynthesisConfig, Tasks

TINY = {
    "kind": "reasoning.synthesis",
    "generations": 1,
    "seed_pairs": 30,
    "pool_pairs": 20,
    "pool_triples": 10,
    "held_out_pairs": 10,
    "held_out_triples": 10,
    "samples_per_spec": 2,
    "model": {"context": 96, "layers": 2, "heads": 2, "width": 48},
    "train": {"seed_steps": 250, "min_steps": 20, "max_steps": 30, "learning_rate": 0.003},
}


def test_reference_programs_meet_their_specs_in_the_sandbox() -> None:
    config = parse_config(TINY, "test")
    assert isinstance(config, SynthesisConfig)
    tasks = Tasks.of(config)
    sandbox = Sandbox()
    for task in tasks.held_out[:5] + tasks.pool[:5]:
        verdict = sandbox.run(task.spec.program(), "f", task.inputs, task.expected)
        assert verdict.passed, verdict.reason
    held = {t.spec for t in tasks.held_out}
    assert not held & {t.spec for t in tasks.pool} and not held & set(tasks.seed)


def test_pieces_round_trip_and_programs_are_cut_after_return() -> None:
    spec = Spec(("sort", "double", "evens"))
    text = spec.prompt + spec.program()
    assert TOKENIZER.decode(TOKENIZER.encode(text)) == text
    assert len(TOKENIZER.encode(text)) < len(text) / 1.5
    assert extract_program(spec.program() + "    x = 1\n") == spec.program()
    assert len(all_specs([2])) == 90 and spec([3, 1, 2, 2]) == [2, 4, 4, 6]
    assert Spec(("sort", "increment", "evens"))([3, 1, 2, 2]) == [2, 4]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        TOKENIZER.encode("import os\n")


def test_kept_programs_pass_and_export_as_prompt_completion(tmp_path: Path) -> None:
    config = parse_config(TINY, "test")
    run = start_run(config, tmp_path)
    store = RunStore.open(run.run_dir)
    arm = store.arms()[0][0]
    snapshot = store.load_snapshot(arm, store.last_generation(arm), CODECS)
    assert snapshot is not None
    kept = snapshot[1].history[-1]
    assert kept.programs, "nothing kept: the test would check nothing"
    tasks = {t.spec.prompt: t for t in Tasks.of(config).pool}
    sandbox = Sandbox()
    for prompt, sample in kept.programs.items():
        task = tasks[prompt]
        assert sandbox.run(sample.content.program, "f", task.inputs, task.expected).passed
        assert sample.provenance.verdict.passed and sample.provenance.arm == arm
    rows = store.provenance(arm, 1)
    assert rows and all(sandbox.isolation in row.verifier and row.passed for row in rows)
    metrics = store.metrics(arm)[1]
    assert metrics["kept/programs"] == len(kept.programs)
    store.close()
    out = tmp_path / "kept.jsonl"
    assert main(["--runs-dir", str(tmp_path), "export", run.run_dir.name, "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["prompt"] for r in records} == set(kept.programs)
    assert all(
        {"prompt", "completion", "generation", "model", "verifier"} <= set(r) for r in records
    )
    assert all(r["passed"] is True and r["source"] == "synthetic" for r in records)
    assert np.mean([r["completion"].startswith("def f(x):") for r in records]) == 1.0


def test_a_machine_without_os_isolation_refuses_to_start_unless_unsafe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Generated code never runs unisolated by accident: with only rlimits available the run
    is refused in one line before anything is written, and `unsafe_sandbox: true` runs it,
    recording UNSAFE in every verdict."""
    from selfimprove.reasoning import sandbox as sandbox_module

    monkeypatch.setattr(sandbox_module, "best_isolation", lambda: "rlimits")
    config = tmp_path / "weak.yaml"
    config.write_text(json.dumps(TINY | {"require_isolation": "rlimits"}))
    runs = tmp_path / "runs"
    assert main(["--runs-dir", str(runs), "run", str(config)]) == 2
    assert "set unsafe to accept it (unsafe_sandbox: true)" in capsys.readouterr().err
    assert not runs.exists() or not any(runs.iterdir())
    unsafe = parse_config(TINY | {"require_isolation": "rlimits", "unsafe_sandbox": True}, "t")
    assert isinstance(unsafe, SynthesisConfig)
    from selfimprove.reasoning.synthesis import build_arms

    arms = build_arms(unsafe)
    assert arms[0].pipeline.verify.sandbox.isolation.startswith("UNSAFE:")  # type: ignore[attr-defined]
