"""AI preference labels (Bai et al. 2022, RL-CAI): a feedback model is asked which of two
answers to a prompt is better by one principle of the constitution, as a multiple-choice
question, and its choice probabilities are the soft label.

The question is one user turn: the prompt, the two answers as "(A) ..." and "(B) ...", the
principle's `choice_instruction` and "Answer with A or B.". `ChatModel.choice_logprobs` gives
log P(reply starts with "A") and log P("B"); the softmax over the two is P(A better).

Conventions, stated once:

- A label is from the point of view of the pair's FIRST answer: `p_first` = P(first better).
- Every pair is asked in both orders, first shown as (A) and first shown as (B), and the two
  log-odds of "first better" are averaged before the sigmoid. So a feedback model that always
  says "A" labels every pair 0.5 (position bias cancels), identical answers get exactly 0.5,
  and swapping a pair's answers gives exactly the negated log-odds.
- The raw position bias is the mean P(the answer shown as (A) is chosen) over both orders,
  minus 0.5: 0 for an unbiased labeller, +0.5 for one that always says "A".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from selfimprove.constitutional.constitution import Constitution, Principle
from selfimprove.constitutional.prompts import Prompt
from selfimprove.core.config import ConfigError
from selfimprove.models.chat import ChatModel, Conversation

CHOICES = ("A", "B")


@dataclass(frozen=True)
class Label:
    """The feedback model's judgement of one pair (first answer, second answer)."""

    principle: str
    p_first: float  # P(first better): the sigmoid of the mean log-odds over both orders
    p_a_first_shown_a: float  # P("A") when the first answer is shown as (A)
    p_a_first_shown_b: float  # P("A") when the first answer is shown as (B)

    @property
    def confidence(self) -> float:
        """|P(first better) - 0.5|: 0 for a coin flip, 0.5 for certainty."""
        return abs(self.p_first - 0.5)


def choice_conversation(prompt: Prompt, a: str, b: str, principle: Principle) -> Conversation:
    """The multiple-choice question: which of (A) and (B) is better by `principle`."""
    assert principle.choice_instruction is not None
    text = (
        f"{prompt.text}\n\n(A) {a}\n\n(B) {b}\n\n{principle.choice_instruction} Answer with A or B."
    )
    return [{"role": "user", "content": text}]


def choosing_principles(constitution: Constitution) -> tuple[Principle, ...]:
    """The principles that can label a pair (those with a choice instruction)."""
    usable = tuple(p for p in constitution.principles if p.choice_instruction)
    if not usable:
        raise ConfigError(
            f"constitution {constitution.name!r} has no principle with a choice_instruction: "
            "AI preference labels need one"
        )
    return usable


def label_pairs(
    feedback: ChatModel,
    pairs: Sequence[tuple[Prompt, str, str]],
    constitution: Constitution,
    rng: np.random.Generator,
) -> list[Label]:
    """One label per (prompt, first, second): a principle drawn per pair, asked in both orders
    (one `choice_logprobs` call: the N pairs first shown as (A), then the same N swapped)."""
    if not pairs:
        return []
    principles = choosing_principles(constitution)
    drawn = [principles[int(i)] for i in rng.integers(0, len(principles), size=len(pairs))]
    forward = [choice_conversation(p, x, y, c) for (p, x, y), c in zip(pairs, drawn, strict=True)]
    swapped = [choice_conversation(p, y, x, c) for (p, x, y), c in zip(pairs, drawn, strict=True)]
    logprobs = feedback.choice_logprobs([*forward, *swapped], CHOICES)  # [2N, 2]
    a_odds = logprobs[:, 0] - logprobs[:, 1]  # [2N]: log-odds of "A"
    n = len(pairs)
    first_odds = (a_odds[:n] - a_odds[n:]) / 2  # [N]: first is (A), then first is (B)
    return [
        Label(c.id, _sigmoid(o), _sigmoid(fa), _sigmoid(fb))
        for c, o, fa, fb in zip(drawn, first_odds, a_odds[:n], a_odds[n:], strict=True)
    ]


def position_bias(labels: Sequence[Label]) -> float:
    """Mean P("A") over every question asked, minus 0.5 (see the module docstring)."""
    if not labels:
        return float("nan")
    shown = [p for label in labels for p in (label.p_a_first_shown_a, label.p_a_first_shown_b)]
    return float(np.mean(shown)) - 0.5


def _sigmoid(log_odds: float) -> float:
    return float(1.0 / (1.0 + np.exp(-log_odds)))
