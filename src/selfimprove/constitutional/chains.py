"""Critique-and-revise chains (Bai et al. 2022, SL-CAI), shared by the training loop and
inference-time refinement.

A `Chain` is one answer to one prompt and every round of self-critique after it: the
principle drawn for the round, the model's critique of the current answer against that
principle's critique request, and its revision under the revision request. A critique that
says no change is needed ends the round without a revision (LangChain users asked for that),
and the answer stays what it was. The conversation of a round is the paper's:

    user: <prompt>            assistant: <current answer>
    user: <critique request>  assistant: <critique>
    user: <revision request>  assistant: <revision>

Everything a model writes here is untrusted text: it is stored and shown escaped, never run.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from selfimprove.constitutional.checkers import Check, Checker
from selfimprove.constitutional.constitution import Constitution, Principle
from selfimprove.constitutional.prompts import Prompt
from selfimprove.models.chat import ChatModel, Conversation, SamplingParams

_NO_CHANGE = re.compile(
    r"\b(no (changes?|critiques?|revisions?|edits?) (are |is )?(needed|necessary|required)|"
    r"nothing to (change|revise|fix))\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Step:
    """One round: the principle drawn, the critique, and the revision it led to."""

    principle: str
    critique_request: str
    revision_request: str
    critique: str
    revision: str
    changed: bool  # False: the critique found nothing to change, the answer stays


@dataclass(frozen=True)
class Chain:
    """A prompt, the first answer, and each critique-and-revise round after it."""

    prompt: Prompt
    answer: str
    steps: tuple[Step, ...] = ()
    sample: int = 0  # which of the prompt's `n` first answers (best-of-n)

    @property
    def final(self) -> str:
        return self.steps[-1].revision if self.steps else self.answer

    @property
    def revisions(self) -> int:
        return len(self.steps)

    def current(self, before: int) -> str:
        """The answer after `before` rounds."""
        return self.steps[before - 1].revision if before else self.answer


def chain_text(chain: Chain) -> str:
    """A chain as people read it (escape it where it is shown: the text is the model's)."""
    lines = [f"PROMPT: {chain.prompt.text}", f"ANSWER: {chain.answer}"]
    for number, step in enumerate(chain.steps, start=1):
        lines.append(f"CRITIQUE {number} [{step.principle}]: {step.critique}")
        lines.append(f"REVISION {number}: {step.revision if step.changed else '(no change)'}")
    return "\n".join(lines)


def chain_record(chain: Chain) -> dict[str, object]:
    """A chain as JSON: prompt, first answer, and every round's fields."""
    return {
        "prompt": chain.prompt.text,
        "answer": chain.answer,
        "steps": [asdict(step) for step in chain.steps],
    }


def first_turn(prompt: Prompt) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt.text}]


def critique_conversation(chain: Chain, principle: Principle) -> list[dict[str, str]]:
    return [
        *first_turn(chain.prompt),
        {"role": "assistant", "content": chain.final},
        {"role": "user", "content": principle.critique_request},
    ]


def revision_conversation(
    chain: Chain, principle: Principle, critique: str
) -> list[dict[str, str]]:
    return [
        *critique_conversation(chain, principle),
        {"role": "assistant", "content": critique},
        {"role": "user", "content": principle.revision_request},
    ]


def no_change_needed(critique: str) -> bool:
    return _NO_CHANGE.search(critique) is not None


@dataclass(frozen=True)
class Budget:
    """Tokens per answer and per critique, and how the model samples them."""

    answer_tokens: int
    critique_tokens: int
    temperature: float
    top_p: float = 0.95

    def params(self, tokens: int, rng: np.random.Generator, n: int = 1) -> SamplingParams:
        return SamplingParams(
            n=n,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=tokens,
            seed=int(rng.integers(2**31)),
        )


def answer(
    chat: ChatModel, prompts: Sequence[Prompt], budget: Budget, rng: np.random.Generator, n: int = 1
) -> list[Chain]:
    """`n` first answers per prompt, as chains with no rounds yet."""
    conversations: list[Conversation] = [first_turn(p) for p in prompts]
    replies = chat.generate(conversations, budget.params(budget.answer_tokens, rng, n))
    return [
        Chain(p, c.text.strip(), sample=i)
        for p, completions in zip(prompts, replies, strict=True)
        for i, c in enumerate(completions)
    ]


def revise_round(
    chat: ChatModel,
    chains: Sequence[Chain],
    constitution: Constitution,
    budget: Budget,
    rng: np.random.Generator,
) -> list[Chain]:
    """One more round for every chain: a principle drawn per chain, a critique, and a
    revision unless the critique says no change is needed."""
    principles = constitution.principles
    drawn = [principles[int(i)] for i in rng.integers(0, len(principles), size=len(chains))]
    critiques = chat.generate(
        [critique_conversation(c, p) for c, p in zip(chains, drawn, strict=True)],
        budget.params(budget.critique_tokens, rng),
    )
    texts = [c[0].text.strip() for c in critiques]
    todo = [i for i, text in enumerate(texts) if not no_change_needed(text)]
    revisions = chat.generate(
        [revision_conversation(chains[i], drawn[i], texts[i]) for i in todo],
        budget.params(budget.answer_tokens, rng),
    )
    revised = {i: r[0].text.strip() for i, r in zip(todo, revisions, strict=True)}
    out = []
    for i, chain in enumerate(chains):
        changed = i in revised
        p = drawn[i]
        step = Step(
            p.id,
            p.critique_request,
            p.revision_request,
            texts[i],
            revised.get(i, chain.final),
            changed,
        )
        out.append(replace(chain, steps=(*chain.steps, step)))
    return out


def copies_critique(chain: Chain, share: float = 0.5) -> bool:
    """Whether the newest revision repeats its own critique instead of rewriting the answer:
    at least `share` of the revision's word trigrams occur in the critique (a training-side
    check on the chain itself; the held-out meter of commentary,
    `checkers.comments_on_a_response`, reads only the answer's first sentence)."""
    if not chain.steps or not chain.steps[-1].changed:
        return False
    step = chain.steps[-1]
    revision, critique = _trigrams(step.revision), _trigrams(step.critique)
    return bool(revision) and len(revision & critique) >= share * len(revision)


def _trigrams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}


def checks(prompt: Prompt, text: str, checkers: dict[str, Checker]) -> list[Check]:
    """Every checker that applies to the prompt's kind, on `text`."""
    return [checker(prompt, text) for name, checker in checkers.items() if applies(name, prompt)]


def applies(checker: str, prompt: Prompt) -> bool:
    from selfimprove.constitutional.checkers import KINDS

    return prompt.kind in KINDS[checker]
