"""Provenance, stamped by the engine: which model made a sample, in which generation and
arm, and what its verifier said. Stages never name the incumbent themselves, so after a
rollback the model named is the incumbent really used, not a guess; a stage names only what
did not come from the incumbent (real data, a fixed generator such as E6's tail-cut one).

Counting: the store keeps how many kept samples share each provenance (`Provenance.key`),
per generation. A kept value is counted through `Batch` (its samples per seed), `Sample`
(one, or `content.num_samples` when the content is itself a batch of items, such as a
generation's self-play positions), sequences of those, or an object exposing them as
`samples` (`KeptSamples`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from selfimprove.core.records import Batch, Provenance, ProvenanceCount, Sample, Verdict
from selfimprove.core.stages import Verdicts


class StampError(ValueError):
    """A verify stage returned verdicts that do not match its samples (a wiring bug)."""


@runtime_checkable
class KeptSamples(Protocol):
    """Kept data that holds its stamped samples beside other bookkeeping."""

    @property
    def samples(self) -> Sequence[Sample[Any] | Batch]: ...


@runtime_checkable
class Counted(Protocol):
    """Content that is itself many items (a generation's self-play positions)."""

    @property
    def num_samples(self) -> int: ...


def origin(arm: str, generation: int, incumbent_generation: int) -> Provenance:
    """The provenance of what the incumbent makes in `generation`."""
    return Provenance("synthetic", generation, f"generation-{incumbent_generation}", arm)


def stamp(samples: Any, verdicts: Verdicts, made: Provenance) -> Any:
    """Pair samples with their verdicts and stamp each with its provenance.

    A sequence becomes a tuple of `Sample`s (one verdict each, or one verdict for all); a
    `Batch` gets its provenance set; any other object becomes one `Sample`. Items a stage
    already named (real data, or data from a fixed generator that is not the incumbent) keep
    their provenance and get the verdict.
    """
    if isinstance(samples, Batch):
        return replace(samples, provenance=_stamped(samples.provenance, made, _one(verdicts)))
    if isinstance(samples, list | tuple):
        if isinstance(verdicts, Verdict):
            verdicts = [verdicts] * len(samples)
        if len(verdicts) != len(samples):
            raise StampError(f"{len(verdicts)} verdicts for {len(samples)} samples")
        return tuple(_sample(item, made, v) for item, v in zip(samples, verdicts, strict=True))
    return _sample(samples, made, _one(verdicts))


def _one(verdicts: Verdicts) -> Verdict:
    if isinstance(verdicts, Verdict):
        return verdicts
    if len(verdicts) != 1:
        raise StampError(f"{len(verdicts)} verdicts for one sample")
    return verdicts[0]


def _stamped(existing: Provenance | None, made: Provenance, verdict: Verdict) -> Provenance:
    return replace(made if existing is None else existing, verdict=verdict)


def _sample(item: Any, made: Provenance, verdict: Verdict) -> Sample[Any]:
    if isinstance(item, Sample):
        return Sample(item.content, _stamped(item.provenance, made, verdict))
    return Sample(item, replace(made, verdict=verdict))


def count_provenance(kept: object) -> tuple[ProvenanceCount, ...]:
    """How many kept samples share each provenance, in the order first seen."""
    counts: dict[tuple[object, ...], ProvenanceCount] = {}
    for provenance, size in _items(kept):
        key = provenance.key()
        seen = counts.get(key)
        counts[key] = ProvenanceCount(provenance, size + (seen.count if seen else 0))
    return tuple(counts.values())


def _items(kept: object) -> Iterable[tuple[Provenance, int]]:
    if isinstance(kept, Batch):
        if kept.provenance is not None:
            yield kept.provenance, kept.num_samples
    elif isinstance(kept, Sample):
        content = kept.content
        yield kept.provenance, content.num_samples if isinstance(content, Counted) else 1
    elif isinstance(kept, KeptSamples):
        for item in kept.samples:
            yield from _items(item)
    elif isinstance(kept, list | tuple):
        for item in kept:
            yield from _items(item)


def provenance_columns(provenance: Provenance) -> dict[str, object]:
    """A sample's provenance as the extra columns of an exported record (JSONL, TRL-style)."""
    verdict = provenance.verdict
    return {
        "source": provenance.source,
        "generation": provenance.generation,
        "model": provenance.model,
        "arm": provenance.arm,
        "verifier": None if verdict is None else verdict.verifier,
        "passed": None if verdict is None else verdict.passed,
        "revision": provenance.revision,
        "review": provenance.review,
    }
