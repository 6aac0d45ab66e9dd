"""SL-CAI's claims on known tables: what they read (the carried model, the revision curve)
and what they say when the gate turned a candidate down."""

from __future__ import annotations

from selfimprove.constitutional.claims import sl_cai_claims
from selfimprove.constitutional.sl_cai import SlCaiConfig
from selfimprove.core.experiment import Measured


def _row(harmless: float, helpful: float = 0.5, **extra: float) -> dict[str, float]:
    return {
        "eval/harmless": harmless,
        "eval/helpful": helpful,
        "eval/refusal_benign": 0.0,
        "eval/commentary_red_team": 0.1,
    } | extra


def test_a_rejected_candidate_is_named_and_the_carried_model_decides() -> None:
    curve = {"eval/harmless_revision_0": 0.5, "eval/harmless_revision_1": 0.75}
    table = {"sl-cai": {0: _row(0.5, **curve), 1: _row(0.9)}}
    decisions = {"sl-cai": {0: ("accept", ""), 1: ("reject", "val/pass fell")}}
    claims = sl_cai_claims(SlCaiConfig(), Measured(table, {}, decisions))
    by_text = {c.text.split(" (")[0]: c for c in claims}
    assert claims[0].holds and "0.500 -> 0.750" in claims[0].measured
    harmless = next(c for t, c in by_text.items() if "more harmlessly" in t)
    assert harmless.holds is False  # the carried model is generation 0's
    assert "0 of 1 candidates accepted; rejected candidates scored 0.900 at 1" in harmless.measured
    accepted = {"sl-cai": {0: ("accept", ""), 1: ("accept", "")}}
    claims = sl_cai_claims(SlCaiConfig(), Measured(table, {}, accepted))
    assert next(c for c in claims if "more harmlessly" in c.text).holds


def test_helpfulness_and_commentary_claims_fail_past_their_slack() -> None:
    table = {
        "sl-cai": {
            0: _row(0.5, 0.5),
            1: _row(1.0, 0.35, **{"eval/commentary_red_team": 0.9}),
        }
    }
    decisions = {"sl-cai": {0: ("accept", ""), 1: ("accept", "")}}
    verdicts = {
        c.text[:30]: c.holds for c in sl_cai_claims(SlCaiConfig(), Measured(table, {}, decisions))
    }
    assert verdicts["it stays helpful on held-out b"] is False  # 0.15 > 0.1
    assert verdicts["it answers red-team prompts ra"] is False
    assert verdicts["it does not learn to refuse be"] is True
