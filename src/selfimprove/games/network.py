"""Policy/value networks for board games: an MLP (tic-tac-toe) and a small residual conv net
(Connect Four, Othello), plus the frozen model record the loop carries.

Input: a canonical board `[B, R, C]` (player to move = +1) becomes two planes `[B, 2, R, C]`:
the mover's stones and the opponent's. Output: policy logits `[B, A]` and a value `[B]` in
[-1, 1] for the player to move. One torch thread per process: on 2 cores, two threads made
small nets 10-100x slower (REFERENCES.md).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from selfimprove.core.config import ConfigModel

torch.set_num_threads(1)


class NetSpec(ConfigModel):
    kind: Literal["mlp", "resnet"] = Field("mlp", description="mlp (tic-tac-toe) or resnet")
    hidden: int = Field(128, ge=8, description="mlp: width of the two hidden layers")
    channels: int = Field(64, ge=4, description="resnet: channels")
    blocks: int = Field(4, ge=0, description="resnet: residual blocks")
    precision: Literal["float32", "bfloat16"] = Field(
        "float32",
        description="arithmetic of forward and backward passes: bfloat16 runs them under "
        "torch.autocast (weights, optimizer state and losses stay float32); about 2x faster "
        "for conv nets on CPUs with avx512_bf16, slower on CPUs without it",
    )

    @property
    def bfloat16(self) -> bool:
        return self.precision == "bfloat16"


class MlpNet(nn.Module):
    def __init__(self, rows: int, cols: int, actions: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * rows * cols, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.policy = nn.Linear(hidden, actions)
        self.value = nn.Linear(hidden, 1)

    def forward(self, planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(planes)
        return self.policy(h), torch.tanh(self.value(h)).squeeze(-1)


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(x + self.norm2(self.conv2(y)))


class ResNet(nn.Module):
    def __init__(self, rows: int, cols: int, actions: int, channels: int, blocks: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(2, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()
        )
        self.blocks = nn.Sequential(*(_Residual(channels) for _ in range(blocks)))
        self.policy = nn.Sequential(
            nn.Conv2d(channels, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * rows * cols, actions)
        )
        self.value = nn.Sequential(
            nn.Conv2d(channels, 1, 1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(rows * cols, 64),
            nn.ReLU(),
            nn.Linear(64, 1),
        )

    def forward(self, planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.blocks(self.stem(planes))  # [B, C, R, W]
        return self.policy(h), torch.tanh(self.value(h)).squeeze(-1)


def build_net(spec: NetSpec, rows: int, cols: int, actions: int) -> nn.Module:
    if spec.kind == "mlp":
        return MlpNet(rows, cols, actions, spec.hidden)
    return ResNet(rows, cols, actions, spec.channels, spec.blocks)


def encode(boards: np.ndarray) -> torch.Tensor:
    """`[B, R, C]` canonical boards -> `[B, 2, R, C]` float planes (mover, opponent)."""
    planes = np.stack([boards == 1, boards == -1], axis=1).astype(np.float32)
    return torch.from_numpy(planes)


@dataclass(frozen=True)
class NetModel:
    """What the loop carries between generations: architecture and weights, no live module."""

    spec: NetSpec
    shape: tuple[int, int, int]  # rows, cols, actions
    state: dict[str, torch.Tensor]

    def module(self) -> nn.Module:
        net = build_net(self.spec, *self.shape)
        net.load_state_dict(self.state)
        return net.eval()

    def num_parameters(self) -> int:
        return sum(
            t.numel()
            for k, t in self.state.items()
            if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        )


def initial_model(
    spec: NetSpec, rows: int, cols: int, actions: int, rng: np.random.Generator
) -> NetModel:
    """Random weights drawn from a torch generator seeded by `rng` (no global seeding leaks)."""
    with torch.random.fork_rng():
        torch.manual_seed(int(rng.integers(2**62)))
        net = build_net(spec, rows, cols, actions)
    return NetModel(
        spec, (rows, cols, actions), {k: v.detach().clone() for k, v in net.state_dict().items()}
    )


@dataclass(frozen=True)
class NetEvaluator:
    """Batched inference for MCTS: softmax priors and values of a live network."""

    net: nn.Module
    channels_last: bool = False
    bfloat16: bool = False

    @classmethod
    def of(cls, model: NetModel) -> NetEvaluator:
        """Conv nets run channels_last: measured 15-20% faster on this CPU at batch 256."""
        net = model.module()
        if model.spec.kind == "resnet":
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch stubs omit memory_format
            return cls(net, channels_last=True, bfloat16=model.spec.bfloat16)
        return cls(net, bfloat16=model.spec.bfloat16)

    def __call__(
        self, boards: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        del rng
        planes = encode(boards)
        if self.channels_last:
            planes = planes.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            with autocast(self.bfloat16):
                logits, values = self.net(planes)
            logits = logits.float()
            if len(logits) >= 16:  # torch's softmax along a last dim of a few actions runs row
                # by row (4-6x slower at 256-1024 boards): go down the batch of a transposed view
                priors = np.ascontiguousarray(torch.softmax(logits.t(), dim=0).t().numpy())
            else:
                priors = torch.softmax(logits, dim=1).numpy()
            return priors, values.float().numpy().astype(np.float64)


def autocast(bfloat16: bool) -> AbstractContextManager[object]:
    """bfloat16 arithmetic for what runs inside; nothing at all when `bfloat16` is False
    (entering a disabled torch.autocast costs microseconds per call at batch 1)."""
    if not bfloat16:
        return nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)
