"""Distillation losses against hand-computed values and their limits."""

from __future__ import annotations

import math

import pytest
import torch

from selfimprove.distill.kd import (
    VocabularyMismatchError,
    expand_top_k,
    generalized_jsd,
    kd_loss,
    top_k_forward_kl,
    top_k_logits,
)


def kl(p: torch.Tensor, q: torch.Tensor) -> float:
    return float((p * (p / q).log()).sum())


def test_kd_loss_mixes_hard_cross_entropy_and_t_squared_soft_kl() -> None:
    student = torch.tensor([[1.0, 0.0, -1.0]])
    teacher = torch.tensor([[2.0, 1.0, 0.0]])
    labels = torch.tensor([1])
    temperature, alpha = 4.0, 0.3
    p_t = torch.softmax(teacher / temperature, -1)[0]
    p_s = torch.softmax(student / temperature, -1)[0]
    hard = -math.log(float(torch.softmax(student, -1)[0, 1]))
    expected = alpha * hard + (1 - alpha) * temperature**2 * kl(p_t, p_s)
    assert float(kd_loss(student, teacher, labels, alpha, temperature)) == pytest.approx(expected)
    # alpha = 1 is plain cross-entropy; alpha = 0 needs no labels
    assert float(kd_loss(student, teacher, labels, 1.0, temperature)) == pytest.approx(hard)
    assert float(kd_loss(teacher, teacher, None, 0.0, temperature)) == pytest.approx(0.0, abs=1e-7)


def test_generalized_jsd_is_forward_kl_reverse_kl_and_jsd_at_its_ends() -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 7), torch.randn(5, 7)
    p_s, p_t = torch.softmax(student, -1), torch.softmax(teacher, -1)
    forward = sum(kl(p_t[i], p_s[i]) for i in range(5)) / 5
    reverse = sum(kl(p_s[i], p_t[i]) for i in range(5)) / 5
    m = 0.5 * (p_s + p_t)
    jsd = sum(0.5 * kl(p_t[i], m[i]) + 0.5 * kl(p_s[i], m[i]) for i in range(5)) / 5
    assert float(generalized_jsd(student, teacher, 0.0)) == pytest.approx(forward, rel=1e-5)
    assert float(generalized_jsd(student, teacher, 1.0)) == pytest.approx(reverse, rel=1e-5)
    assert float(generalized_jsd(student, teacher, 0.5)) == pytest.approx(jsd, rel=1e-5)
    assert 0.0 < jsd <= math.log(2)


def test_different_vocabularies_are_a_clear_error() -> None:
    with pytest.raises(VocabularyMismatchError, match="12 vs 10 tokens"):
        generalized_jsd(torch.zeros(2, 10), torch.zeros(2, 12), 0.5)


def test_top_k_logits_keep_the_top_mass_and_spread_the_rest() -> None:
    logits = torch.tensor([[3.0, 1.0, 0.5, -1.0, -2.0]])
    values, ids = top_k_logits(logits, 2)
    assert ids.tolist() == [[0, 1]]
    log_probs = expand_top_k(values, ids, 5)
    probs = log_probs.exp()
    assert float(probs.sum()) == pytest.approx(1.0, abs=1e-6)
    exact = torch.softmax(logits, -1)
    assert probs[0, :2].tolist() == pytest.approx(exact[0, :2].tolist(), rel=1e-6)
    rest = float(exact[0, 2:].sum()) / 3
    assert probs[0, 2:].tolist() == pytest.approx([rest] * 3, rel=1e-5)


def test_top_k_forward_kl_is_the_kl_to_the_renormalized_top_k_teacher() -> None:
    teacher = torch.tensor([[3.0, 1.0, 0.5, -1.0, -2.0]])
    student = torch.tensor([[1.0, 2.0, 0.0, 0.0, 0.0]])
    values, ids = top_k_logits(teacher, 2)
    p = torch.softmax(teacher[0, :2], -1)  # teacher over its two tokens
    q = torch.softmax(student, -1)[0, :2]  # the student's probabilities of them
    expected = float((p * (p.log() - q.log())).sum())
    assert float(top_k_forward_kl(student, values, ids)) == pytest.approx(expected, rel=1e-6)
    # with every token stored it is the full forward KL
    values, ids = top_k_logits(teacher, 5)
    full = generalized_jsd(student, teacher, 0.0)
    assert float(top_k_forward_kl(student, values, ids)) == pytest.approx(float(full), rel=1e-5)
