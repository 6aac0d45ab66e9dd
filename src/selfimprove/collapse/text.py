"""What the two text studies share (E8 tiny GPT, E9 n-gram): real Shakespeare split by play,
cut into documents, and the monitors of a generated corpus against the real one.

A corpus is a `Batch` of documents `[1, N, L]` (one seed; E9's are word ids, E8's character
ids), so the data policies of `core.policies` mix and accumulate text as they do numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field, model_validator

from selfimprove.collapse.study import PolicyArm
from selfimprove.core import text_monitors
from selfimprove.core.config import ConfigModel
from selfimprove.core.experiment import Table, column, trace
from selfimprove.core.records import Claim, ClaimPlot, Metrics
from selfimprove.core.text_monitors import WordIndex
from selfimprove.data import shakespeare
from selfimprove.data.shakespeare import spread_windows

__all__ = ["RealText", "TextSplit", "spread_windows"]


class TextSplit(ConfigModel):
    """Which plays are trained on and which are held out (a play is never in both)."""

    test_plays: tuple[str, ...] = Field(
        ("macbeth", "the-tempest"), min_length=1, description="held-out plays"
    )
    train_plays: tuple[str, ...] | None = Field(
        None, description="training plays (default: every play not held out)"
    )
    rare_max_count: int = Field(
        2, ge=1, description="a real word or bigram seen at most this often in training is rare"
    )
    bleu_documents: int = Field(64, ge=2, description="documents self-BLEU compares")

    @model_validator(mode="after")
    def _disjoint(self) -> TextSplit:
        names = set(shakespeare.play_names())
        for play in (*self.test_plays, *(self.train_plays or ())):
            if play not in names:
                raise ValueError(
                    f"unknown play {play!r}; the plays are: {', '.join(sorted(names))}"
                )
        both = set(self.test_plays) & set(self.train_plays or ())
        if both:
            raise ValueError(f"a play cannot be trained on and held out: {', '.join(sorted(both))}")
        return self

    def training_plays(self) -> list[str]:
        if self.train_plays is not None:
            return list(self.train_plays)
        return [name for name in shakespeare.play_names() if name not in self.test_plays]


@dataclass(frozen=True)
class RealText:
    """The real training corpus as the monitors see it: its vocabulary and its rare tail."""

    index: WordIndex
    rare_words: np.ndarray
    rare_bigrams: np.ndarray
    bleu_documents: int

    @classmethod
    def of(
        cls, documents: Sequence[Sequence[str]], split: TextSplit, index: WordIndex | None = None
    ) -> RealText:
        """The rare tail of `documents` (the real training set), with word ids from `index`
        (default: the documents' own vocabulary)."""
        index = index or WordIndex.of(documents)
        corpus = index.encode(documents)
        return cls(
            index,
            corpus.rare(1, split.rare_max_count),
            corpus.rare(2, split.rare_max_count),
            split.bleu_documents,
        )

    def metrics(self, documents: Sequence[Sequence[str]], text: str) -> Metrics:
        """Diversity and tail monitors of a generated corpus (`documents` in words, `text`
        the whole of it as it reads)."""
        corpus = self.index.encode(documents)
        return {
            "monitor/distinct_1": corpus.distinct(1),
            "monitor/distinct_2": corpus.distinct(2),
            "monitor/distinct_3": corpus.distinct(3),
            "monitor/self_bleu": text_monitors.self_bleu(documents[: self.bleu_documents]),
            "monitor/compression": text_monitors.compression_ratio(text),
            "monitor/vocabulary": float(corpus.vocabulary_size()),
            "monitor/novel_words": corpus.novel_share(),
            "monitor/rare_words": corpus.coverage(1, self.rare_words),
            "monitor/rare_bigrams": corpus.coverage(2, self.rare_bigrams),
        }


NLL = "eval/test_nll"


def text_claims(arms: tuple[PolicyArm, ...], table: Table, unit: str) -> list[Claim]:
    """E8 / E9: held-out cross-entropy and the monitors of the generated text, per policy.

    Targets (REFERENCES E8/E9): replace rises every generation (Gerstgrasser et al., GPT-2 on
    TinyStories: +0.26 ... +0.58 nats over generations 2-5); accumulate stays within ~0.05
    nats of generation 1; 10% real rises a little; temperature < 1 and top-p shrink the
    support every generation; distinct-n falls, self-BLEU rises, rare n-gram coverage falls.
    """
    claims = []
    nll = {arm.label(): column(table[arm.label()], NLL) for arm in arms}
    plain_replace = [
        arm.label()
        for arm in arms
        if arm.policy.mix == "replace" and arm.policy.temperature == 1 and arm.policy.top_p == 1
    ]
    replace_rise = nll[plain_replace[0]][-1] - nll[plain_replace[0]][0] if plain_replace else None
    for arm in arms:
        label, policy, values = arm.label(), arm.policy, nll[arm.label()]
        series = table[label]
        n = len(values) - 1
        if n < 1:
            continue
        rise = values[-1] - values[0]
        if label in plain_replace:
            steps = np.diff(values)
            claims.append(
                Claim(
                    f"{label}: held-out cross-entropy ({unit}) rises every generation, "
                    f"{n} generations (papers: +0.26 to +0.58 nats over generations 2-5)",
                    f"{trace(values)} (+{rise:.3f})",
                    bool((steps > 0).all()),
                    ClaimPlot(NLL),
                )
            )
        if policy.mix == "accumulate":
            drift = max(abs(v - values[1]) for v in values[1:])
            claims.append(
                Claim(
                    f"{label}: held-out cross-entropy stays within 0.05 nats of generation 1 "
                    "(Gerstgrasser et al.)",
                    f"{trace(values)}; largest distance from generation 1: {drift:.3f}",
                    drift <= 0.05,
                    ClaimPlot(NLL, (label,), (values[1] - 0.05, values[1] + 0.05)),
                )
            )
        if policy.mix in ("accumulate", "mix_fixed_real", "mix_fresh_real") and replace_rise:
            claims.append(
                Claim(
                    f"{label}: held-out cross-entropy rises less than half as much as under "
                    "replace",
                    f"+{rise:.3f} vs +{replace_rise:.3f}",
                    rise < 0.5 * replace_rise,
                    ClaimPlot(NLL),
                )
            )
        if policy.mix == "replace" and (policy.temperature < 1 or policy.top_p < 1):
            vocabulary = column(series, "monitor/vocabulary")
            claims.append(
                Claim(
                    f"{label}: the support shrinks every generation (word types produced)",
                    " -> ".join(f"{v:.0f}" for v in vocabulary),
                    bool((np.diff(vocabulary) < 0).all()),
                )
            )
        if policy.mix == "replace":
            first, last = series[min(series)], series[max(series)]
            moves = {
                "distinct-2 falls": last["monitor/distinct_2"] < first["monitor/distinct_2"],
                "self-BLEU rises": last["monitor/self_bleu"] > first["monitor/self_bleu"],
                "rare-word coverage falls": last["monitor/rare_words"]
                < first["monitor/rare_words"],
            }
            measured = (
                f"distinct-2 {first['monitor/distinct_2']:.3f} -> {last['monitor/distinct_2']:.3f}, "
                f"self-BLEU {first['monitor/self_bleu']:.3f} -> {last['monitor/self_bleu']:.3f}, "
                f"rare words {first['monitor/rare_words']:.3f} -> {last['monitor/rare_words']:.3f}"
            )
            failed = [name for name, held in moves.items() if not held]
            claims.append(
                Claim(
                    f"{label}: the diversity and tail monitors move as the chapter predicts "
                    "(distinct-2 falls, self-BLEU rises, rare-word coverage falls)",
                    measured + (f"; not so: {', '.join(failed)}" if failed else ""),
                    not failed,
                )
            )
    return claims
