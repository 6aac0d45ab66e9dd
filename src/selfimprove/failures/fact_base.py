"""The facts loop's data and model (`failures/facts.py`): statements, a run's entities with
generation 0's planted errors, one tiny GPT per replicate and what it believes, and how a
statement meets a reviewer and an export.

Entities and capitals are single tokens of a word-level tokenizer (multi-word names joined by
`_`, `data/capitals.py`), so a statement is the prompt `entity :` and one answer token, and a
model's confidence in an answer is one softmax probability. Arrays are `[S, N]` (replicates,
entities) and hold token ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from selfimprove.core.provenance import provenance_columns
from selfimprove.core.records import Provenance, Sample
from selfimprove.core.review import ReviewHooks
from selfimprove.core.seeding import stage_rng
from selfimprove.data.capitals import capitals
from selfimprove.models.tiny_gpt import Example, LmModel, PieceTokenizer, initial_lm, train_lm

if TYPE_CHECKING:
    from selfimprove.failures.facts import FactsConfig

KNOWLEDGE_BASE = "knowledge base"
"""The provenance of true statements (generation 0's, corrections, the real share)."""
PLANTED = "planted error"
"""The provenance of generation 0's wrong statements."""


@dataclass(frozen=True)
class Statement:
    """ "The capital of `entity` is `capital`", as replicate `replicate` has it. `off_mode`:
    its writer's own greedy answer was another capital (a sample off the model's mode; what
    the key-free monitor counts)."""

    replicate: int
    entity: str
    capital: str
    off_mode: bool = False

    @property
    def text(self) -> str:
        place, city = (w.replace("_", " ") for w in (self.entity, self.capital))
        return f"the capital of {place} is {city}"


@dataclass(frozen=True)
class Facts:
    """A run's entities and generation-0 statements, drawn once from the run seed."""

    entities: tuple[str, ...]  # [N]
    tokenizer: PieceTokenizer  # entities, their capitals and ":"
    truth: np.ndarray  # int64 [N]: each entity's capital, as a token id
    told: np.ndarray  # int64 [S, N]: generation 0's statements, planted errors swapped in

    @classmethod
    def of(cls, config: FactsConfig) -> Facts:
        base = capitals()
        if config.entities > len(base):
            raise ValueError(f"entities: the knowledge base has {len(base)}")
        names = sorted(base)
        pick = stage_rng(config.seed, 0, "setup/entities").permutation(len(names))
        entities = tuple(names[i] for i in sorted(pick[: config.entities]))
        tokenizer = PieceTokenizer([*entities, *(base[e] for e in entities), ":"])
        truth = np.array([tokenizer.encode(base[e])[0] for e in entities], dtype=np.int64)
        told = np.tile(truth, (config.num_seeds, 1))
        rng, n = stage_rng(config.seed, 0, "setup/planted-errors"), len(entities)
        for row in told:
            wrong = rng.choice(n, config.planted_errors, replace=False)
            other = (wrong + rng.integers(1, n, size=len(wrong))) % n  # never the entity itself
            row[wrong] = truth[other]
        return cls(entities, tokenizer, truth, told)

    @property
    def planted(self) -> np.ndarray:
        wrong: np.ndarray = self.told != self.truth  # bool [S, N]
        return wrong

    def generation_zero(self) -> tuple[Sample[Statement], ...]:
        """Every replicate's statements of every entity, named after their source."""
        return tuple(
            Sample(
                Statement(s, entity, self.word(int(self.told[s, i]))),
                Provenance("real", 0, PLANTED if self.planted[s, i] else KNOWLEDGE_BASE),
            )
            for s in range(len(self.told))
            for i, entity in enumerate(self.entities)
        )

    @property
    def prompts(self) -> list[list[int]]:
        return [self.tokenizer.encode(f"{e}:") for e in self.entities]

    def token(self, capital: str) -> int:
        return self.tokenizer.encode(capital)[0]

    def word(self, token: int) -> str:
        return self.tokenizer.decode([token]) or "(nothing)"


@dataclass(frozen=True)
class FactModels:
    """One tiny GPT per replicate, and the answers the monitors compare with (token ids
    `[S, N]`): generation 0's, and the incumbent's when this model was trained."""

    lms: tuple[LmModel, ...]
    reference: np.ndarray
    previous: np.ndarray


@torch.inference_mode()
def beliefs(lm: LmModel, facts: Facts) -> tuple[np.ndarray, np.ndarray]:
    """Greedy answers `[N]` and their probabilities `[N]` (the model's confidence)."""
    logits = lm.module()(torch.tensor(facts.prompts))[:, -1]  # [N, V]
    probs = torch.softmax(logits, dim=-1)
    confidence, answers = probs.max(dim=-1)
    return answers.numpy().astype(np.int64), confidence.numpy().astype(np.float64)


def answers_of(lms: Sequence[LmModel], facts: Facts) -> np.ndarray:
    answers: np.ndarray = np.stack([beliefs(lm, facts)[0] for lm in lms])  # [S, N]
    return answers


def train_fresh(
    config: FactsConfig, facts: Facts, statements: Sequence[Statement], rng: np.random.Generator
) -> LmModel:
    """A tiny GPT from random weights, `steps` steps on `statements` (none: untrained)."""
    fresh = initial_lm(config.model.spec(facts.tokenizer.vocab_size), rng)
    prompts = dict(zip(facts.entities, facts.prompts, strict=True))
    examples = [Example(tuple(prompts[s.entity]), (facts.token(s.capital),)) for s in statements]
    if not examples:
        return fresh
    return train_lm(fresh, examples, config.steps, config.training, rng)[0]


# --- export and review ------------------------------------------------------------------


def export_records(kept: tuple[Sample[Statement], ...]) -> list[dict[str, object]]:
    """Kept statements as TRL prompt/completion records with their provenance columns."""
    records: list[dict[str, object]] = []
    for item in kept:
        s = item.content
        prompt, _, capital = s.text.rpartition(" is ")
        records.append(
            {
                "prompt": f"{prompt} is",
                "completion": f" {capital}",
                **provenance_columns(item.provenance),
                "replicate": s.replicate,
                "true": s.capital == capitals()[s.entity],
            }
        )
    return records


def _view(s: Statement) -> dict[str, str]:
    return {"replicate": str(s.replicate), "statement": s.text}


def _not_edited(content: Statement, fields: object) -> Statement:
    del fields
    return content


def _true(s: Statement) -> bool:
    return capitals()[s.entity] == s.capital


def _flag(s: Statement) -> str | None:
    return "not its writer's own greedy answer" if s.off_mode else None


REVIEW = ReviewHooks("statement", _view, _not_edited, (), _true, _flag, reason="incorrect")
