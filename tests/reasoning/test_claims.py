"""STaR's claims read the right numbers: a hand-made table where the answer is known."""

from __future__ import annotations

from selfimprove.core.experiment import Measured
from selfimprove.experiments import parse_config
from selfimprove.reasoning.claims import star_claims
from selfimprove.reasoning.star import StarConfig


def series(per_generation: list[list[float]], tokens: float) -> dict[int, dict[str, float]]:
    """Accuracy per length (1-3) per generation."""
    out = {}
    for g, accs in enumerate(per_generation):
        m = {f"eval/accuracy_{d + 1}_digits": a for d, a in enumerate(accs)}
        m["eval/accuracy_trained_lengths"] = sum(accs) / len(accs)
        m["train/tokens_total"] = tokens * (g + 1)
        out[g] = m
    return out


def test_claims_on_a_known_table() -> None:
    config = parse_config({"kind": "reasoning.star", "train_digits": [1, 2, 3]}, "test")
    assert isinstance(config, StarConfig)
    table = {
        "star": series([[0.3, 0.1, 0.0], [0.9, 0.6, 0.5], [1.0, 0.95, 0.92]], 1e6),
        "star_no_rationalization": series([[0.3, 0.1, 0.0], [0.9, 0.2, 0.0], [1.0, 0.6, 0.1]], 1e6),
        "direct": series([[0.2, 0.0, 0.0], [0.5, 0.1, 0.0], [0.7, 0.2, 0.0]], 2e6),
    }
    minutes = {"star": {0: 5.0, 1: 12.0, 2: 31.0}}
    found = star_claims(config, Measured(table, minutes, {}))
    assert [c.holds for c in found] == [True, True, False, True, True]
    assert "generation 2, 31.0 min" in found[2].measured  # above 90% only after 30 minutes
    assert "without [1, 2, never], with [1, 1, 1]" in found[4].measured
    table["direct"] = series([[0.2, 0.0, 0.0], [0.5, 0.1, 0.0], [0.99, 0.99, 0.99]], 2e6)
    assert not star_claims(config, Measured(table, minutes, {}))[3].holds  # direct wins


def test_claims_read_the_model_carried_not_a_rejected_candidate() -> None:
    """A last candidate the gate rejected is not the model: the claims read the incumbent."""
    config = parse_config({"kind": "reasoning.star", "train_digits": [1, 2, 3]}, "test")
    assert isinstance(config, StarConfig)
    table = {"star": series([[0.3, 0.1, 0.0], [1.0, 0.95, 0.92], [0.1, 0.0, 0.0]], 1e6)}
    decisions = {"star": {0: ("accept", ""), 1: ("accept", ""), 2: ("reject", "worse")}}
    found = star_claims(config, Measured(table, {"star": {0: 1.0, 1: 2.0, 2: 3.0}}, decisions))
    assert found[1].holds and "at generation 2" in found[1].measured
    assert "95.7%" in found[1].measured  # generation 1's model, carried through generation 2
