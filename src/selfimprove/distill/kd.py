"""Distillation losses (Hinton et al. 2015; GKD, Agarwal et al. 2024, in TRL's conventions).

- `kd_loss`: `alpha * CE(hard labels) + (1 - alpha) * T^2 * KL(teacher_T || student_T)`.
  `alpha` is the weight of the *hard* loss (alpha = 1: hard labels only; alpha = 0: soft
  labels only). The T^2 keeps the soft term's gradients the same size as T changes.
- `generalized_jsd`: per token, `beta * KL(teacher || M) + (1 - beta) * KL(student || M)`
  with `M = beta * teacher + (1 - beta) * student`, TRL's `beta`: 0 gives forward
  KL(teacher || student) (mode covering), 1 gives reverse KL(student || teacher) (mode
  seeking, MiniLLM), values between interpolate (JSD at 0.5).
- `top_k_logits`: a teacher's top-k log-probabilities stored offline; `top_k_forward_kl`
  trains on them directly (the teacher renormalized over its k tokens, the student scored on
  those tokens: sparse KD); `expand_top_k` turns them back into a full distribution with the
  rest of the mass spread evenly (measured worse: it teaches mass on unlikely tokens).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional

torch.set_num_threads(1)


class VocabularyMismatchError(ValueError):
    """Teacher and student do not share one vocabulary: token-level KD is undefined."""


def check_vocabularies(teacher: int, student: int) -> None:
    if teacher != student:
        raise VocabularyMismatchError(
            f"teacher and student vocabularies differ ({teacher} vs {student} tokens): "
            "token-level distillation needs one tokenizer; use sequence-level KD instead"
        )


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """Mean over rows of `[N, C]` logits; `labels` `[N]` may be None when `alpha` is 0."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha (the hard-loss weight) must be in [0, 1], not {alpha}")
    check_vocabularies(teacher_logits.shape[-1], student_logits.shape[-1])
    soft = functional.kl_div(
        functional.log_softmax(student_logits / temperature, dim=-1),
        functional.log_softmax(teacher_logits / temperature, dim=-1),
        reduction="batchmean",
        log_target=True,
    )
    loss = (1.0 - alpha) * temperature**2 * soft
    if alpha > 0.0:
        if labels is None:
            raise ValueError("a hard-loss weight alpha > 0 needs labels")
        loss = loss + alpha * functional.cross_entropy(student_logits, labels)
    return loss


def generalized_jsd(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    beta: float,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over the (masked) positions of `[..., V]` logits, in nats."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], not {beta}")
    check_vocabularies(teacher_logits.shape[-1], student_logits.shape[-1])
    s = functional.log_softmax(student_logits / temperature, dim=-1)
    t = functional.log_softmax(teacher_logits / temperature, dim=-1)
    if beta == 0.0:
        per_token = (t.exp() * (t - s)).sum(-1)
    elif beta == 1.0:
        per_token = (s.exp() * (s - t)).sum(-1)
    else:
        mixture = torch.logsumexp(torch.stack([s + math.log(1 - beta), t + math.log(beta)]), dim=0)
        per_token = beta * (t.exp() * (t - mixture)).sum(-1) + (1 - beta) * (
            s.exp() * (s - mixture)
        ).sum(-1)
    if mask is None:
        return per_token.mean()
    return (per_token * mask).sum() / mask.sum().clamp(min=1)


def top_k_logits(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest log-probabilities and their token ids, `[..., k]` each."""
    log_probs = functional.log_softmax(logits, dim=-1)
    values, ids = log_probs.topk(k, dim=-1)
    return values, ids


def expand_top_k(values: torch.Tensor, ids: torch.Tensor, vocabulary: int) -> torch.Tensor:
    """Log-probabilities `[..., V]` from stored top-k ones; the remaining mass is spread
    evenly over the other tokens (so every token keeps a finite log-probability)."""
    kept = values.exp().sum(-1, keepdim=True).clamp(max=1.0)
    rest = (1.0 - kept).clamp(min=1e-12) / max(vocabulary - ids.shape[-1], 1)
    out = torch.log(rest).expand(*values.shape[:-1], vocabulary).clone()
    return out.scatter(-1, ids, values)


def top_k_forward_kl(
    student_logits: torch.Tensor, values: torch.Tensor, ids: torch.Tensor
) -> torch.Tensor:
    """KL(teacher_k || student) over the teacher's k stored tokens per position, the teacher
    renormalized over them; mean over positions. `[..., V]`, `[..., k]`, `[..., k]`."""
    teacher = torch.softmax(values, dim=-1)  # renormalized over the k tokens
    student = functional.log_softmax(student_logits, dim=-1).gather(-1, ids)
    return (teacher * (torch.log_softmax(values, dim=-1) - student)).sum(-1).mean()
