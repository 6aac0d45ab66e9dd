"""Snapshots cannot run code: every loop's state round-trips as JSON and arrays, bit for bit;
a planted pickle, a foreign type or a damaged file is a one-line error, and nothing runs."""

from __future__ import annotations

import json
import math
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from selfimprove.cli import main
from selfimprove.core.records import Batch, Provenance, Sample, Verdict
from selfimprove.core.snapshot import SnapshotError, read_snapshot, write_snapshot
from selfimprove.core.store import RunStore
from selfimprove.experiments import CODECS, parse_config, start_run
from selfimprove.models.tiny_gpt import GptSpec
from selfimprove.reports.metrics import describe
from tests.tiny import TINY, tiny


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types, arrays and tensors compared bit for bit (NaN too)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, torch.Tensor):
        layout = a.is_contiguous() == b.is_contiguous()
        return (
            a.dtype == b.dtype
            and layout
            and torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))
        )
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if hasattr(a, "__dataclass_fields__"):
        fields = [f for f in a.__dataclass_fields__ if f != "cache"]
        return all(_same(getattr(a, f), getattr(b, f)) for f in fields)
    return bool(a == b)


def test_a_state_of_every_value_kind_round_trips_bit_for_bit(tmp_path: Path) -> None:
    conv = torch.randn(4, 3, 2, 2).contiguous(memory_format=torch.channels_last)
    state = {
        "floats": (0.1 + 0.2, -0.0, math.inf, -math.inf, math.nan, 4.0e-305),
        "ints": [0, -1, 2**63 - 1, 2**70],
        3: "an int key",
        (1, 2): ["a tuple key", True, None],
        "arrays": [np.arange(5, dtype=np.int8), np.array([[np.nan, 1.5]]), np.zeros((0, 3))],
        "scalar": np.float32(1.25),
        "tensors": {"w": torch.randn(3, 2), "half": torch.randn(5).bfloat16(), "conv": conv},
        "config": GptSpec(vocab_size=10, context=16, width=16, heads=2),
        "sample": Sample(
            "text", Provenance("synthetic", 3, "generation-1", "arm", Verdict(None, "unverified"))
        ),
        "batch": Batch(np.ones((2, 3, 1)), Provenance("real", 0, "world"), {"cached": 1}),
    }
    write_snapshot(tmp_path, state, CODECS)
    read = read_snapshot(tmp_path, CODECS)
    assert _same(read, state)
    assert read["tensors"]["conv"].is_contiguous(memory_format=torch.channels_last)
    assert read["batch"].cache == {}  # a cache is rebuilt, never stored


@pytest.mark.parametrize("kind", sorted(TINY))
def test_every_loop_uses_each_stream_once_and_snapshots_without_loss(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One run of each loop (one arm, one generation): no named random stream is drawn twice
    (two uses of one stream would correlate what should be independent), every name is a
    name (no bare "setup"), the saved state reads back exactly, and every metric it reports
    is described in the metric registry."""
    from selfimprove.core import seeding

    drawn: list[tuple[int, str]] = []
    original = seeding._sequence

    def record(seed: int, generation: int, name: str) -> np.random.SeedSequence:
        drawn.append((generation, name))
        return original(seed, generation, name)

    monkeypatch.setattr(seeding, "_sequence", record)
    run = start_run(parse_config(tiny(kind, checkpoint_every=1), "test"), tmp_path)
    assert run.status == "finished"
    assert len(drawn) == len(set(drawn)), sorted(d for d in drawn if drawn.count(d) > 1)
    assert all(name in seeding._STAGES or "/" in name for _, name in drawn), drawn
    store = RunStore.open(run.run_dir)
    arm = store.arms()[0][0]
    saved = store.load_snapshot(arm, 1, CODECS)
    assert saved is not None and saved[0] == 1
    copy = tmp_path / "copy"
    copy.mkdir()
    write_snapshot(copy, saved[1], CODECS)
    folder = store.arm_dir(arm) / "gen-00001"
    for name in ("snapshot.json", "arrays.npz"):
        assert (copy / name).read_bytes() == (folder / name).read_bytes(), name
    synthetic = [row for row in store.provenance(arm, 1) if row.source == "synthetic"]
    assert all(row.model in ("generation-0", "tail-cut generator") for row in synthetic)
    # every metric the loop reports has a title and an axis label with its unit
    keys = {k for metrics in store.metrics(arm).values() for k in metrics}
    unknown = sorted(
        k
        for k in keys
        if not k.startswith(("analytic/", "axis/", "sweep/")) and not describe(k).known
    )
    assert not unknown, f"metrics missing from reports/metrics.py: {unknown}"
    store.close()


def _stopped_run(tmp_path: Path) -> Path:
    config = parse_config(tiny("collapse.gaussian", 3, checkpoint_every=1), "test")
    return start_run(config, tmp_path, stop_after=2).run_dir


class _Payload:
    """Unpickling this runs `touch` on a file: the attack a pickle in a run folder allows."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.target}",))


def _resume(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--runs-dir", str(run_dir.parent), "resume", run_dir.name])
    return code, capsys.readouterr().err


def test_resume_never_loads_a_planted_pickle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _stopped_run(tmp_path / "runs")
    newest = run_dir / "arms" / "replace_mle_M_100" / "gen-00002"
    assert (newest / "snapshot.json").exists()
    for name in ("snapshot.json", "arrays.npz"):
        (newest / name).unlink()
    pwned = tmp_path / "pwned"
    (newest / "state.pkl").write_bytes(pickle.dumps(_Payload(pwned)))
    code, err = _resume(run_dir, capsys)
    assert code == 2 and not pwned.exists()
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "pickle" in err and "gen-00002" in err


def test_a_snapshot_edited_after_it_was_recorded_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _stopped_run(tmp_path / "runs")
    newest = run_dir / "arms" / "replace_mle_M_100" / "gen-00002" / "snapshot.json"
    newest.write_text(newest.read_text().replace('"generation":2', '"generation":1', 1))
    code, err = _resume(run_dir, capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "does not match the checksum the run recorded" in err and "gen-00002" in err


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"$record": "posix:system", "fields": {}}, "may not use"),
        ({"$record": "builtins:eval", "fields": {}}, "may not use"),
        ({"$config": "subprocess:Popen", "data": {}}, "may not use"),
        ({"$record": "selfimprove.core.engine:LoopStateRenamed", "fields": {}}, "does not have"),
        ({"$record": "selfimprove.core.engine:Engine.run", "fields": {}}, "does not have"),
        (
            {"$record": "selfimprove.core.engine:Engine", "fields": {}},
            "does not have",
        ),  # not frozen
        (
            {"$record": "selfimprove.models.tiny_gpt:nn.LinearCrossEntropyOptions", "fields": {}},
            "does not have",
        ),
        ({"$record": "selfimprove.models.tensors:torch._dynamo.x", "fields": {}}, "does not have"),
        ({"$record": "selfimprove.core.engine:LoopState.__class__", "fields": {}}, "may not use"),
        ({"$config": "selfimprove.core.config:BaseModel", "data": {}}, "may not use"),
        ({"$config": "selfimprove.core.config:ConfigError", "data": {}}, "does not have"),
        ({"$scalar": "|i1", "value": 1000}, "malformed"),
        ({"$scalar": "V99999999999", "value": 1}, "malformed"),
        ({"$scalar": "|O", "value": 1}, "unexpected scalar"),
        ({"$record": "selfimprove.core.engine:LoopState", "fields": {"nope": 1}}, "malformed"),
        ({"$config": "selfimprove.models.tiny_gpt:GptSpec", "data": {"width": -1}}, "GptSpec"),
        ({"$array": "a99"}, "missing array"),
        ({"$dict": [[[1], 2]]}, "malformed"),
        ({"$float": "1e308"}, "unexpected value"),
        ({"$nothing": 0}, "unknown tag"),
    ],
)
def test_reading_an_edited_snapshot_constructs_only_our_records(
    tmp_path: Path, state: Any, message: str
) -> None:
    """Whatever the JSON says, the reader builds only our own records and configs (from
    modules already imported) and fails with one line otherwise."""
    write_snapshot(tmp_path, {"a": 1})
    header = json.loads((tmp_path / "snapshot.json").read_text())
    (tmp_path / "snapshot.json").write_text(json.dumps(header | {"state": state}))
    imported = set(sys.modules)
    with pytest.raises(SnapshotError, match=message) as caught:
        read_snapshot(tmp_path, CODECS)
    assert "\n" not in str(caught.value)
    assert set(sys.modules) == imported  # reading it imported nothing


def test_a_nested_or_garbled_snapshot_file_is_one_line(tmp_path: Path) -> None:
    write_snapshot(tmp_path, {"a": 1})
    for text in ("[" * 100_000, "{not json", "\x00\xff"):
        (tmp_path / "snapshot.json").write_text(text, errors="surrogateescape")
        with pytest.raises(SnapshotError, match=r"cannot be read|has schema"):
            read_snapshot(tmp_path)
    write_snapshot(tmp_path, {"a": 1})
    (tmp_path / "arrays.npz").write_bytes(b"PK not a zip")
    with pytest.raises(SnapshotError, match="checksum"):
        read_snapshot(tmp_path)


def test_an_older_schema_is_refused_by_name(tmp_path: Path) -> None:
    write_snapshot(tmp_path, {"a": 1})
    header = json.loads((tmp_path / "snapshot.json").read_text())
    (tmp_path / "snapshot.json").write_text(json.dumps(header | {"schema": 1}))
    with pytest.raises(SnapshotError, match="has schema 1; this selfimprove reads 2"):
        read_snapshot(tmp_path)


def test_a_snapshot_refuses_what_it_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="cannot hold a function"):
        write_snapshot(tmp_path, {"f": _stopped_run})
    with pytest.raises(TypeError, match="Python objects"):
        write_snapshot(tmp_path, {"a": np.array([object()])})


def test_a_tensor_stored_under_another_dtype_is_refused(tmp_path: Path) -> None:
    write_snapshot(tmp_path, {"w": torch.randn(4).bfloat16()}, CODECS)
    header = json.loads((tmp_path / "snapshot.json").read_text())
    header["state"]["$dict"][0][1]["dtype"] = "float32"  # int16 bits read as float32
    (tmp_path / "snapshot.json").write_text(json.dumps(header))
    with pytest.raises(SnapshotError, match="a float32 tensor stored as int16"):
        read_snapshot(tmp_path, CODECS)
