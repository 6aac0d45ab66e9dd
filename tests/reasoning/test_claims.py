"""STaR's claims read the right numbers: a hand-made table where the answer is known."""

from __future__ import annotations

from selfimprove.core.experiment import Measured
from selfimprove.core.records import Claim
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


def _shaped(
    equal: float, unequal: float, wrong: float, coverage: tuple[float, float]
) -> dict[str, float]:
    m = {f"eval/accuracy_{d}_digits": 0.9 for d in (1, 2, 3)}
    m |= {"eval/accuracy_trained_lengths": 0.9, "eval/accuracy_held_out": 0.88}
    m |= {"eval/accuracy_equal": equal, "eval/accuracy_unequal": unequal}
    m |= {
        f"eval/{s}_{d}_digits": v
        for d in (2, 3)
        for s, v in (("equal", equal), ("unequal", unequal))
    }
    m |= {"eval/robust_carry_chain": equal, "eval/robust_one_digit_addend": unequal}
    m |= {"eval/right_wrong_working_3_digits": wrong, "kept/size": 100.0}
    m |= {"kept/coverage_equal": coverage[0], "kept/coverage_unequal": coverage[1]}
    m |= {"kept/wrong_working_fraction": wrong, "train/tokens_total": 1e6}
    return m


def test_shape_and_faithfulness_claims_on_a_known_table() -> None:
    config = parse_config(
        {
            "kind": "reasoning.star",
            "train_digits": [1, 2, 3],
            "arms": [
                "star",
                {"name": "star_balanced", "unequal_share": 0.5},
                {"name": "star_working", "verifier": "working"},
            ],
        },
        "test",
    )
    assert isinstance(config, StarConfig)
    table = {
        "star": {0: _shaped(0.5, 0.1, 0.3, (0.5, 0.1)), 1: _shaped(0.95, 0.2, 0.4, (0.9, 0.2))},
        "star_balanced": {
            0: _shaped(0.5, 0.3, 0.3, (0.5, 0.5)),
            1: _shaped(0.94, 0.9, 0.2, (0.9, 0.8)),
        },
        "star_working": {
            0: _shaped(0.5, 0.1, 0.0, (0.5, 0.1)),
            1: _shaped(0.93, 0.2, 0.05, (0.9, 0.2)),
        },
    }
    minutes = {arm: {0: 1.0, 1: 20.0} for arm in table}

    def one(claims: list[Claim], words: str) -> Claim:
        (claim,) = [c for c in claims if words in c.text]
        return claim

    found = star_claims(config, Measured(table, minutes, {}))
    shape = one(found, "common shape")
    assert shape.holds and "unequal 20.0% vs equal 95.0%" in shape.measured
    monitor = one(found, "diversity monitor")
    assert monitor.holds and "15.0% of unequal vs 70.0% of equal" in monitor.measured
    cure = one(found, "star_balanced (seed set")
    assert cure.holds and "first at generation 1, 20.0 CPU-minutes" in cure.measured  # 94 ~ 95
    robust = one(found, "trades no shape")
    assert robust.holds and "one_digit_addend 90% (star 20%)" in robust.measured
    faithful = one(found, "star_working (working check)")
    assert faithful.holds and "5.0% (star 40.0%)" in faithful.measured
    assert one(found, "the answer check keeps").holds
    # the bars bite: equal accuracy 3 points down, too many wrong workings, too slow
    table["star_balanced"][1] = _shaped(0.92, 0.9, 0.2, (0.9, 0.8))
    table["star_working"][1] = _shaped(0.93, 0.2, 0.11, (0.9, 0.2))
    again = star_claims(config, Measured(table, minutes, {}))
    assert not one(again, "star_balanced (seed set").holds
    assert not one(again, "star_working (working").holds
    table["star_balanced"][1] = _shaped(0.94, 0.9, 0.2, (0.9, 0.8))
    slow = {**minutes, "star_balanced": {0: 1.0, 1: 31.0}}
    assert not one(star_claims(config, Measured(table, slow, {})), "star_balanced (seed").holds
    # reached at generation 1 within the time, lost at generation 2: it reached it in time
    table["star_balanced"][2] = _shaped(0.90, 0.8, 0.2, (0.9, 0.8))
    late = {**minutes, "star_balanced": {0: 1.0, 1: 20.0, 2: 40.0}}
    cure = one(star_claims(config, Measured(table, late, {})), "star_balanced (seed")
    assert cure.holds and "at generation 2: unequal 80.0%" in cure.measured


def test_no_right_answer_leaves_the_wrong_working_claim_not_checked() -> None:
    config = parse_config({"kind": "reasoning.star", "train_digits": [1, 2, 3]}, "test")
    assert isinstance(config, StarConfig)
    metrics = _shaped(0.1, 0.0, float("nan"), (0.2, 0.0))
    found = star_claims(config, Measured({"star": {0: metrics, 1: metrics}}, {}, {}))
    (claim,) = [c for c in found if "the answer check keeps" in c.text]
    assert claim.holds is None and "no right answer at 3 digits" in claim.measured
