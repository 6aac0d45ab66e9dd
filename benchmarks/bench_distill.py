"""Benchmark (issue 5): classifier KD training throughput (examples/s) with the teacher's
logits precomputed once for the transfer set, against running the teacher on every
minibatch, in the same run (MNIST-5k, the recipe's 784-512-512-10 teacher and a 784-64-10
student, batch 64). Both train the same student on the same minibatches. Run serially:
`make bench`."""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from selfimprove.distill.classifier import Training, split, train_mlp

STEPS = 1500


def main() -> None:
    print(f"# KD training throughput, {platform.node()}, load {os.getloadavg()[0]:.2f}")
    data = split("mnist_5k", 0.25, np.random.default_rng(0))
    dim = data.train_x.shape[1]
    teacher = train_mlp(
        (dim, 512, 512, 10),
        data.train_x,
        Training(steps=300),
        np.random.default_rng(1),
        labels=data.train_y,
    )
    training = Training(steps=STEPS)
    student = (dim, 64, 10)
    examples = STEPS * training.batch_size

    start = time.perf_counter()
    logits = teacher.logits(data.train_x).numpy()  # once, for the whole transfer set
    a = train_mlp(
        student,
        data.train_x,
        training,
        np.random.default_rng(2),
        teacher_logits=logits,
        temperature=4.0,
    )
    precomputed = time.perf_counter() - start

    start = time.perf_counter()
    b = train_mlp(
        student, data.train_x, training, np.random.default_rng(2), teacher=teacher, temperature=4.0
    )
    on_the_fly = time.perf_counter() - start

    same = abs(a.accuracy(data.test_x, data.test_y) - b.accuracy(data.test_x, data.test_y))
    print(
        f"precomputed teacher logits: {examples / precomputed:,.0f} examples/s ({precomputed:.1f} s)"
    )
    print(
        f"teacher on the fly:         {examples / on_the_fly:,.0f} examples/s ({on_the_fly:.1f} s)"
    )
    print(f"speed-up {on_the_fly / precomputed:.2f}x; test accuracy differs by {same:.4f}")


if __name__ == "__main__":
    main()
