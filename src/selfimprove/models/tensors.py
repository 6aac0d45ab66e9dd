"""Torch tensors in snapshots: bit-exact numpy arrays, so a run folder never holds a pickle.

bfloat16 has no numpy dtype, so its bits travel as int16; a channels-last tensor keeps its
memory layout (a conv net's stored weights are read back exactly as they were written).
"""

from __future__ import annotations

import numpy as np
import torch

from selfimprove.core.snapshot import SnapshotError, TensorCodec

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
_BITS = {"bfloat16": torch.int16}  # dtypes numpy lacks, carried as same-width integers
_NUMPY = {name: np.dtype("int16" if name in _BITS else name) for name in _DTYPES}
"""The numpy dtype each tensor dtype is stored as."""


def _to_numpy(tensor: torch.Tensor) -> tuple[np.ndarray, str, str]:
    tensor = tensor.detach().cpu()
    dtype = str(tensor.dtype).removeprefix("torch.")
    if dtype not in _DTYPES:
        raise TypeError(f"a snapshot cannot hold a {dtype} tensor")
    channels_last = tensor.dim() == 4 and not tensor.is_contiguous()
    channels_last = channels_last and tensor.is_contiguous(memory_format=torch.channels_last)
    layout = "channels_last" if channels_last else ""
    bits = tensor.contiguous()
    if dtype in _BITS:
        bits = bits.view(_BITS[dtype])
    return bits.numpy().copy(), dtype, layout


def _from_numpy(array: np.ndarray, dtype: str, layout: str) -> torch.Tensor:
    if dtype not in _DTYPES or layout not in ("", "channels_last"):
        raise SnapshotError(f"unknown tensor dtype or layout {dtype!r} {layout!r}")
    if array.dtype != _NUMPY[dtype]:
        raise SnapshotError(f"a {dtype} tensor stored as {array.dtype}")
    tensor = torch.from_numpy(np.array(array, copy=True))
    if dtype in _BITS:
        tensor = tensor.view(_DTYPES[dtype])
    if tensor.dtype != _DTYPES[dtype]:
        raise SnapshotError(f"a {dtype} tensor stored as {tensor.dtype}")
    if layout:
        if tensor.dim() != 4:
            raise SnapshotError("a channels-last tensor that is not 4-D")
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    return tensor


TORCH_TENSORS = TensorCodec("torch", torch.Tensor, _to_numpy, _from_numpy)
