"""E10's claims: Shumailov et al.'s language-model findings, checked on a run's table.

Targets (REFERENCES, "Model collapse" and "Scale-out and tracking"): under replace the
held-out perplexity rises from generation 0 to the last; the generated documents'
perplexity under the generation-0 model grows a low-perplexity spike (more documents below
what real text scores) and a long tail (more above it); keeping 10% of the real data slows the rise, and
accumulating (Gerstgrasser et al.) holds it. Each claim states its numbers, held or not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from selfimprove.collapse.text import text_claims
from selfimprove.core.experiment import Measured, Table, column, trace
from selfimprove.core.records import Claim, ClaimPlot

if TYPE_CHECKING:
    from selfimprove.collapse.pretrained import PretrainedCollapseConfig

PPL = "eval/test_ppl"
LOW = "monitor/gen0_low_share"
HIGH = "monitor/gen0_high_share"


def pretrained_claims(config: PretrainedCollapseConfig, measured: Measured) -> list[Claim]:
    table = measured.metrics
    claims = []
    replace = [
        arm.label()
        for arm in config.arms
        if arm.policy.mix == "replace" and arm.policy.temperature == 1 and arm.policy.top_p == 1
    ]
    if replace and len(table[replace[0]]) > 1:
        claims += _replace_claims(replace[0], table)
        claims += _policy_claims(config, replace[0], table)
    return claims + text_claims(config.arms, table, "nats per token")


def _replace_claims(label: str, table: Table) -> list[Claim]:
    series = table[label]
    ppl = column(series, PPL)
    first, last = series[min(series)], series[max(series)]
    width = [s["monitor/gen0_nll_q90"] - s["monitor/gen0_nll_q10"] for s in (first, last)]
    low, high = column(series, LOW), column(series, HIGH)
    spike = last[LOW] > first[LOW] and low[-1] > 0.1
    return [
        Claim(
            f"{label}: held-out perplexity rises from generation 0 to the last "
            "(Shumailov et al., OPT-125m on wikitext2)",
            f"{trace(ppl)} ({ppl[-1] / ppl[0] - 1:+.1%})",
            ppl[-1] > ppl[0],
            ClaimPlot(PPL),
        ),
        Claim(
            f"{label}: generated text drifts toward what generation 0 finds likely: more "
            "documents below the real text's 10th percentile of perplexity under generation 0 "
            "(the paper's low-perplexity spike; real text: 0.10)",
            f"share {trace(low)}",
            spike,
            ClaimPlot(LOW),
        ),
        Claim(
            f"{label}: the histogram of generated documents' log perplexity under generation 0 "
            "narrows (10th-90th percentile width)",
            f"{width[0]:.3f} -> {width[1]:.3f} nats per token; median "
            f"{np.exp(first['monitor/gen0_nll_median']):.1f} -> "
            f"{np.exp(last['monitor/gen0_nll_median']):.1f} perplexity",
            width[1] < width[0],
            ClaimPlot("monitor/gen0_nll_q90"),
        ),
        Claim(
            f"{label}: a long tail of errors grows: more documents above the real text's 90th "
            "percentile of perplexity under generation 0 (real text: 0.10)",
            f"share {trace(high)}",
            last[HIGH] > first[HIGH],
            ClaimPlot(HIGH),
        ),
    ]


def _policy_claims(config: PretrainedCollapseConfig, replace: str, table: Table) -> list[Claim]:
    claims = []
    replace_ppl = column(table[replace], PPL)
    for arm in config.arms:
        label = arm.label()
        if arm.policy.mix not in ("accumulate", "mix_fixed_real", "mix_fresh_real"):
            continue
        ppl = column(table[label], PPL)
        claims.append(
            Claim(
                f"{label}: held-out perplexity ends lower than under {replace}",
                f"{ppl[-1]:.2f} vs {replace_ppl[-1]:.2f} at generation {len(ppl) - 1} "
                f"(rise {ppl[-1] / ppl[0] - 1:+.1%} vs {replace_ppl[-1] / replace_ppl[0] - 1:+.1%})",
                ppl[-1] < replace_ppl[-1],
                ClaimPlot(PPL),
            )
        )
    return claims
