"""Token-level distillation of a tiny GPT into a smaller one, on Shakespeare (characters).

The teacher (trained once per run on the real training documents) and each student share
one vocabulary. A student arm is trained from fresh weights with one loss:

- `data`: cross-entropy on the real documents alone (the baseline);
- `forward_kl` / `reverse_kl` / `jsd`: the generalized JSD of `kd.generalized_jsd` against
  the teacher's next-token distributions (TRL's `beta`: 0, 1, or in between), on real
  documents or, with probability `on_policy` per step, on documents the student itself
  samples (GKD's lambda);
- `seq_kd`: cross-entropy on documents the teacher samples (sequence-level KD).

`top_k` stores only the teacher's k most likely next tokens per position (log-probabilities
and ids, computed once for the training documents, as users keep them offline) and trains
with forward KL over those k tokens (`kd.top_k_forward_kl`); forward KL only.

Every row carries held-out cross-entropy (nats per character on the test plays), the
teacher's, the parameter count and the tokens/s of scoring on this machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from selfimprove.core.config import ConfigError, ConfigModel, GateConfig, LoopConfig
from selfimprove.core.engine import Arm, Pipeline
from selfimprove.core.experiment import Experiment
from selfimprove.core.gates import build_gate
from selfimprove.core.memo import Newest
from selfimprove.core.records import Metrics, Provenance, Sample
from selfimprove.core.seeding import stage_rng
from selfimprove.core.stages import keep_all, unverified
from selfimprove.data import shakespeare
from selfimprove.data.shakespeare import ALPHABET, spread_windows, windows_between
from selfimprove.distill.claims import lm_claims
from selfimprove.distill.kd import generalized_jsd, top_k_forward_kl, top_k_logits
from selfimprove.models.shape import GptShape
from selfimprove.models.tiny_gpt import (
    EOS,
    CharTokenizer,
    Example,
    LmModel,
    LmTrainConfig,
    SamplingConfig,
    document_nll,
    initial_lm,
    lr_schedule,
    sample,
    train_lm,
    with_start,
)

Loss = Literal["data", "forward_kl", "reverse_kl", "jsd", "seq_kd"]
START = EOS
VOCABULARY = len(ALPHABET) + 2  # characters, padding and the start / end token


class LmStudentArm(ConfigModel):
    name: str | None = Field(None, description="label in tables and plots")
    loss: Loss = Field(
        "forward_kl", description="data, forward_kl, reverse_kl, jsd or seq_kd (module docstring)"
    )
    beta: float = Field(0.5, ge=0.0, le=1.0, description="for jsd (forward_kl: 0, reverse_kl: 1)")
    on_policy: float = Field(0.0, ge=0.0, le=1.0, description="share of steps on own samples")
    top_k: int | None = Field(
        None, ge=1, description="store only the teacher's top-k log-probabilities, offline"
    )

    @model_validator(mode="after")
    def _top_k_is_forward(self) -> LmStudentArm:
        if self.top_k is not None and self.loss != "forward_kl":
            raise ValueError("top_k (stored teacher tokens) trains with loss forward_kl only")
        return self

    def label(self) -> str:
        if self.name:
            return self.name
        text = {"jsd": f"jsd(beta={self.beta:g})"}.get(self.loss, self.loss)
        text += f", on-policy {self.on_policy:g}" if self.on_policy else ""
        return text + (f", top-{self.top_k} stored" if self.top_k else "")

    def beta_value(self) -> float:
        return {"forward_kl": 0.0, "reverse_kl": 1.0}.get(self.loss, self.beta)


class LmKdConfig(LoopConfig):
    """Token-level KD: forward KL, reverse KL, JSD, on-policy, sequence-level, data only."""

    kind: Literal["distill.lm"] = Field(
        "distill.lm", description="which experiment this recipe runs"
    )
    generations: int = Field(
        0, ge=0, description="iterated generations after 0 (the student teaches)"
    )
    test_plays: tuple[str, ...] = Field(
        ("macbeth", "the-tempest"), min_length=1, description="plays held out for the test"
    )
    train_documents: int = Field(1000, ge=2, description="documents of the training plays")
    validation_documents: int = Field(
        100, ge=1, description="other documents of the training plays, for the gate"
    )
    test_documents: int = Field(200, ge=1, description="documents of the test plays")
    teacher: GptShape = Field(
        GptShape(layers=4, width=128),
        description="the teacher (context: start token + characters per document)",
    )
    student: GptShape = Field(GptShape(width=64), description="the student (same context)")
    teacher_steps: int = Field(600, ge=1, description="teacher training steps")
    student_steps: int = Field(400, ge=1, description="training steps per student")
    training: LmTrainConfig = Field(
        LmTrainConfig(batch_size=16, learning_rate=2e-3, warmup_steps=30),
        description="optimizer settings (teacher and students)",
    )
    arms: tuple[LmStudentArm, ...] = Field(
        (LmStudentArm(),), min_length=1, description="students distilled side by side"
    )
    checkpoint_every: int = Field(0, ge=0, description="seconds to replay: no snapshots")
    gate: GateConfig = Field(
        GateConfig(kind="no_regression", metric="val/nll", tolerance=0.02, higher_is_better=False),
        description="iterated generations: keep a student no worse than its predecessor on "
        "validation documents (nats per character)",
    )

    @model_validator(mode="after")
    def _one_context(self) -> LmKdConfig:
        if self.teacher.context != self.student.context:
            raise ValueError("teacher.context and student.context differ: KD compares positions")
        return self

    @property
    def context(self) -> int:
        return self.student.context

    def memory_bytes(self) -> int:
        """Teacher and student training side by side, and stored teacher top-k tokens."""
        batch = self.training.batch_size
        stored = max((arm.top_k or 0 for arm in self.arms), default=0)
        top_k = 12 * self.train_documents * self.teacher.context * stored
        return self.teacher.memory_bytes(batch) + self.student.memory_bytes(batch) + top_k


@dataclass(frozen=True)
class Corpus:
    train: np.ndarray  # [N, L] character ids
    validation: np.ndarray  # [V, L] other windows of the training plays
    test: np.ndarray  # [M, L] the test plays


def corpus(config: LmKdConfig) -> Corpus:
    tokenizer = CharTokenizer(ALPHABET)
    length = config.context - 1
    train_plays = [p for p in shakespeare.play_names() if p not in config.test_plays]

    def ids(plays: list[str]) -> np.ndarray:
        return np.array(tokenizer.encode(shakespeare.corpus(plays)), dtype=np.int64)

    train = ids(train_plays)
    available = train.size // length
    wanted = config.train_documents + config.validation_documents
    if wanted > available:
        raise ConfigError(
            f"train_documents + validation_documents = {wanted} windows of {length} characters; "
            f"the training plays hold {available}"
        )
    return Corpus(
        spread_windows(train, length, config.train_documents),
        windows_between(train, length, config.validation_documents, config.train_documents),
        spread_windows(ids(list(config.test_plays)), length, config.test_documents),
    )


def test_nll(lm: LmModel, documents: np.ndarray) -> tuple[float, float]:
    """Held-out nats per character and scoring tokens/s (measured)."""
    start = time.perf_counter()
    nll = float(document_nll(lm, documents).mean())  # documents are all the same length
    return nll, documents.size / max(time.perf_counter() - start, 1e-9)


def _documents_from(lm: LmModel, count: int, length: int, rng: np.random.Generator) -> np.ndarray:
    rows = sample(lm, [[START]] * count, SamplingConfig(length, 1.0, 1.0, stop_at_end=False), rng)
    docs = np.array(rows, dtype=np.int64)
    docs[docs < 2] = CharTokenizer(ALPHABET).encode(" ")[0]
    return docs


def distill_student(
    config: LmKdConfig, arm: LmStudentArm, teacher: LmModel, data: Corpus, rng: np.random.Generator
) -> LmModel:
    fresh = initial_lm(config.student.spec(VOCABULARY), rng)
    length = data.train.shape[1]
    if arm.loss in ("data", "seq_kd"):
        docs = (
            data.train
            if arm.loss == "data"
            else _documents_from(teacher, data.train.shape[0], length, rng)
        )
        examples = [Example((START,), tuple(d.tolist())) for d in docs]
        return train_lm(fresh, examples, config.student_steps, config.training, rng)[0]
    net, teacher_net = fresh.module().train(), teacher.module()
    optimizer = torch.optim.AdamW(
        net.parameters(),
        lr=config.training.learning_rate,
        weight_decay=config.training.weight_decay,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_schedule(config.student_steps, config.training)
    )
    batch = config.training.batch_size
    stored = _stored_top_k(teacher_net, data.train, arm.top_k) if arm.top_k else None
    for _ in range(config.student_steps):
        rows = None
        if arm.on_policy and rng.random() < arm.on_policy:
            current = LmModel(
                fresh.spec, {k: v.detach().clone() for k, v in net.state_dict().items()}
            )
            step_docs = torch.as_tensor(_documents_from(current, batch, length, rng))
            net.train()
        else:
            rows = torch.as_tensor(rng.integers(0, data.train.shape[0], batch))
            step_docs = torch.as_tensor(data.train)[rows]
        inputs = with_start(step_docs)
        if stored is not None and rows is not None:  # offline: read, do not run, the teacher
            values, ids = stored
            loss = top_k_forward_kl(net(inputs), values[rows], ids[rows])
        else:
            with torch.no_grad():
                target_logits = teacher_net(inputs)
            loss = generalized_jsd(net(inputs), target_logits, arm.beta_value())
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    return LmModel(fresh.spec, {k: v.detach().clone() for k, v in net.state_dict().items()})


@torch.inference_mode()
def _stored_top_k(
    teacher_net: torch.nn.Module, documents: np.ndarray, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's top-k log-probabilities and token ids at every position of every
    training document, computed once (what a user stores offline instead of full logits)."""
    values, ids = [], []
    for chunk in np.array_split(documents, max(1, documents.shape[0] // 100)):
        v, i = top_k_logits(teacher_net(with_start(torch.as_tensor(chunk))), k)
        values.append(v)
        ids.append(i)
    return torch.cat(values), torch.cat(ids)


@dataclass(frozen=True)
class Distilled:
    teacher: LmModel
    student: LmModel


@dataclass(frozen=True)
class Targets:
    """What the next student learns from: a teacher's next-token distributions (computed per
    minibatch in `train`: on-policy steps need the student being trained) or its sampled
    documents (seq_kd); `teacher` None: the real documents alone (the data baseline)."""

    teacher: LmModel | None


Kept = Sample[Targets]

_TEACHERS: Newest[str, LmModel] = Newest()  # every arm of a run shares it


@dataclass(frozen=True)
class Setup:
    config: LmKdConfig
    arm: LmStudentArm
    data: Corpus

    def teacher(self) -> LmModel:
        key = self.config.model_dump_json(exclude={"arms", "generations", "gate"})
        return _TEACHERS.get(key, self._train_teacher)

    def _train_teacher(self) -> LmModel:
        rng = stage_rng(self.config.seed, 0, "setup/teacher")
        fresh = initial_lm(self.config.teacher.spec(VOCABULARY), rng)
        examples = [Example((START,), tuple(d.tolist())) for d in self.data.train]
        return train_lm(fresh, examples, self.config.teacher_steps, self.config.training, rng)[0]

    def initialize(self, rng: np.random.Generator) -> tuple[Distilled, Kept]:
        teacher = self.teacher()
        model = Distilled(teacher, distill_student(self.config, self.arm, teacher, self.data, rng))
        if self.arm.loss == "data":
            return model, Sample(Targets(None), Provenance("real", 0, "training plays"))
        return model, Sample(Targets(teacher), Provenance("synthetic", 0, "teacher"))

    def next_targets(
        self, model: Distilled, generation: int, rng: np.random.Generator
    ) -> Targets | Sample[Targets]:
        """Generate: iterated, the incumbent student becomes the next teacher (the engine
        names it); the data baseline trains on the real documents again."""
        del rng
        if self.arm.loss == "data":
            return Sample(Targets(None), Provenance("real", generation, "training plays"))
        return Targets(model.student)

    def train(self, incumbent: Distilled, kept: Kept, rng: np.random.Generator) -> Distilled:
        teacher = kept.content.teacher or incumbent.student  # data: the teacher is unused
        student = distill_student(self.config, self.arm, teacher, self.data, rng)
        return Distilled(teacher, student)

    def evaluate(self, model: Distilled, generation: int, rng: np.random.Generator) -> Metrics:
        del generation, rng
        nll, speed = test_nll(model.student, self.data.test)
        teacher_nll, teacher_speed = test_nll(model.teacher, self.data.test)
        return {
            "val/nll": test_nll(model.student, self.data.validation)[0],
            "eval/test_nll": nll,
            "eval/teacher_test_nll": teacher_nll,
            "model/parameters": float(model.student.num_parameters()),
            "model/teacher_parameters": float(model.teacher.num_parameters()),
            "timing/tokens_per_s": speed,
            "timing/teacher_tokens_per_s": teacher_speed,
        }


def build_arms(config: LmKdConfig) -> list[Arm]:
    data = corpus(config)
    arms = []
    for arm in config.arms:
        setup = Setup(config, arm, data)
        pipeline: Pipeline[Distilled, Targets | Sample[Targets], Kept] = Pipeline(
            initialize=setup.initialize,
            generate=setup.next_targets,
            verify=unverified,  # a student trusts its teacher
            curate=keep_all,
            train=setup.train,
            evaluate=setup.evaluate,
            gate=build_gate(config.gate),
            history_window=1,
        )
        arms.append(Arm(arm.label(), pipeline))
    return arms


EXPERIMENT = Experiment(LmKdConfig, build_arms, lm_claims)
