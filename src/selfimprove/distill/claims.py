"""The distillation claims, checked against a run's stored metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from selfimprove.core.experiment import Measured, carried
from selfimprove.core.records import Claim, ClaimPlot

if TYPE_CHECKING:  # the method files import these claims for their Experiment records
    from selfimprove.distill.distill import ClassifierKdConfig, StudentArm
    from selfimprove.distill.lm import LmKdConfig


def _same_student(a: StudentArm, b: StudentArm) -> bool:
    return (a.hidden, a.data_share, a.removed_class) == (b.hidden, b.data_share, b.removed_class)


def classifier_claims(config: ClassifierKdConfig, measured: Measured) -> list[Claim]:
    """Soft labels beat hard labels for the same student by more than the seed spread (the
    worst soft seed above the best hard seed; Hinton et al.: 3% of the speech data, 57.0% vs
    44.5%); a removed class recovers >= 90% after the bias correction (98.6% of the 3s);
    iterated distillation: how much each generation loses."""
    table = measured.metrics
    claims = []
    first = {arm.label(): table[arm.label()][0] for arm in config.arms}
    for hard in (a for a in config.arms if a.labels == "hard" and a.removed_class is None):
        h = first[hard.label()]
        for soft in (a for a in config.arms if a.labels == "soft" and _same_student(a, hard)):
            s = first[soft.label()]
            claims.append(
                Claim(
                    f"{config.dataset}: {soft.label()} beats {hard.label()} by more than the "
                    f"spread over {config.num_seeds} seeds",
                    f"{s['eval/accuracy_mean']:.3f} [{s['eval/accuracy_low']:.3f}, "
                    f"{s['eval/accuracy_high']:.3f}] vs {h['eval/accuracy_mean']:.3f} "
                    f"[{h['eval/accuracy_low']:.3f}, {h['eval/accuracy_high']:.3f}]",
                    s["eval/accuracy_low"] > h["eval/accuracy_high"],
                    ClaimPlot(  # each dot's bar spans its seeds: soft's must clear the band
                        "eval/accuracy_mean",
                        (hard.label(), soft.label()),
                        (h["eval/accuracy_high"], None),
                        x="arm",
                    ),
                )
            )
    for arm in (a for a in config.arms if a.removed_class is not None):
        m = first[arm.label()]
        claims.append(
            Claim(
                f"{config.dataset}: {arm.label()}: the bias correction recovers >= 90% of the "
                f"unseen class {arm.removed_class} (Hinton et al.: 98.6% of the 3s)",
                f"{m['eval/unseen_class_accuracy_mean']:.3f} before, "
                f"{m['eval/unseen_class_corrected_mean']:.3f} after",
                m["eval/unseen_class_corrected_mean"] >= 0.9,
                ClaimPlot("eval/unseen_class_corrected_mean", (arm.label(),), (0.9, None), x="arm"),
            )
        )
    for arm in config.arms if config.generations else ():
        series = carried(measured, arm.label())  # the students kept, not rejected candidates
        accuracy = [series[g]["eval/accuracy_mean"] for g in sorted(series)]
        trace = " -> ".join(f"{a:.3f}" for a in accuracy)
        rejected = sum(a == "reject" for a, _ in measured.decisions.get(arm.label(), {}).values())
        if config.gate.kind == "accept_all":
            claims.append(
                Claim(
                    f"{config.dataset}: {arm.label()}: distillation is lossy: each student "
                    f"trained only on its predecessor's outputs ends below generation 0 after "
                    f"{len(accuracy) - 1} generations",
                    f"{trace} (teacher {series[0]['eval/teacher_accuracy']:.3f})",
                    accuracy[-1] < accuracy[0],
                    ClaimPlot("eval/accuracy_mean", (arm.label(),), (None, accuracy[0])),
                )
            )
            continue
        claims.append(
            Claim(
                f"{config.dataset}: {arm.label()}: behind a no-regression gate on "
                f"{config.gate.metric} (tolerance {config.gate.tolerance:g}) the student "
                f"carried after {len(accuracy) - 1} generations keeps its held-out test "
                "accuracy within 0.005 of generation 0 (ungated, iterated.yaml, it decays)",
                f"{trace}; {rejected} of {len(accuracy) - 1} candidates rejected",
                accuracy[-1] >= accuracy[0] - 0.005,
            )
        )
    return claims


def lm_claims(config: LmKdConfig, measured: Measured) -> list[Claim]:
    """Token-level KD: does a distilled student beat the same student trained on the data
    alone, and how close does it come to its teacher?"""
    del config
    table = measured.metrics
    first = {arm: series[0] for arm, series in table.items()}
    if "data" not in first:
        return []
    data = first["data"]["eval/test_nll"]
    claims = []
    for arm, m in first.items():
        if arm == "data":
            continue
        gap = m["eval/teacher_test_nll"]
        claims.append(
            Claim(
                f"{arm}: the distilled student beats the same student trained on the data alone "
                "(held-out nats per character)",
                f"{m['eval/test_nll']:.3f} vs {data:.3f} (teacher {gap:.3f}, "
                f"{m['model/parameters']:.0f} vs {m['model/teacher_parameters']:.0f} parameters)",
                m["eval/test_nll"] < data,
                ClaimPlot("eval/test_nll", (arm, "data"), (None, data), x="arm"),
            )
        )
    return claims
