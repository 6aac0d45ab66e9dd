"""Iterative refinement at inference time: generate -> critique -> revise until the checkers
pass or the round budget runs out (no training). `selfimprove refine` and `refine(...)`.

Each round revises only the answers that still fail (an answer that passes is done: later
revisions undo earlier fixes, so it is not touched again); every answer is re-checked by
every applicable checker after every round. The report gives, per round, the share of
prompts whose answer passes, and its cost: calls, completion tokens and wall seconds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from selfimprove.constitutional.chains import Budget, Chain, answer, checks, revise_round
from selfimprove.constitutional.checkers import Checker
from selfimprove.constitutional.constitution import Constitution
from selfimprove.constitutional.prompts import Prompt
from selfimprove.models.chat import ChatModel, Completion, Conversation, SamplingParams


class Metered:
    """A chat model that counts what it is asked for: calls, conversations, tokens."""

    def __init__(self, chat: ChatModel) -> None:
        self.chat = chat
        self.name = chat.name
        self.calls = 0
        self.conversations = 0
        self.tokens = 0

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[list[Completion]]:
        out = self.chat.generate(conversations, params)
        self.calls += 1
        self.conversations += len(conversations)
        self.tokens += sum(c.completion_tokens for row in out for c in row)
        return out

    def choice_logprobs(
        self, conversations: Sequence[Conversation], choices: Sequence[str]
    ) -> np.ndarray:
        self.calls += 1
        return self.chat.choice_logprobs(conversations, choices)


@dataclass(frozen=True)
class RoundReport:
    """After round `round` (0: the first answers): pass rate and what the round cost."""

    round: int
    pass_rate: float
    revised: int  # answers revised in this round
    tokens: int  # completion tokens generated in this round
    seconds: float


@dataclass(frozen=True)
class Refined:
    chains: tuple[Chain, ...]
    passed: tuple[bool, ...]
    rounds: tuple[RoundReport, ...]


def passes(chain: Chain, checkers: Mapping[str, Checker]) -> bool:
    found = checks(chain.prompt, chain.final, dict(checkers))
    return bool(found) and all(c.passed for c in found)


def refine(
    chat: ChatModel,
    prompts: Sequence[Prompt],
    constitution: Constitution,
    checkers: Mapping[str, Checker],
    rounds: int,
    budget: Budget,
    seed: int = 0,
) -> Refined:
    """Answer every prompt, then revise the failing answers for up to `rounds` rounds."""
    metered = Metered(chat)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    chains = answer(metered, prompts, budget, rng)
    passed = [passes(c, checkers) for c in chains]
    reports = [RoundReport(0, float(np.mean(passed)), 0, metered.tokens, _since(started))]
    for number in range(1, rounds + 1):
        failing = [i for i, ok in enumerate(passed) if not ok]
        if not failing:
            break
        tokens, started = metered.tokens, time.perf_counter()
        revised = revise_round(metered, [chains[i] for i in failing], constitution, budget, rng)
        for i, chain in zip(failing, revised, strict=True):
            chains[i] = chain
            passed[i] = passes(chain, checkers)
        reports.append(
            RoundReport(
                number,
                float(np.mean(passed)),
                len(failing),
                metered.tokens - tokens,
                _since(started),
            )
        )
    return Refined(tuple(chains), tuple(passed), tuple(reports))


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
