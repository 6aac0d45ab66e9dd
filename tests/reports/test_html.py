import base64
import html
import re
from pathlib import Path

from selfimprove.core.records import ClaimPlot
from selfimprove.core.store import RunStore
from selfimprove.experiments import claims_for, load_config, start_run
from selfimprove.reports.html import write_run_report
from selfimprove.reports.metrics import describe
from selfimprove.reports.plots import (
    claim_figure,
    dot_figure,
    families,
    family_figure,
    metric_figure,
    plottable_keys,
    uninformative,
)
from tests.conftest import CONFIGS


def _policies(tmp_path: Path) -> RunStore:
    config = load_config(
        CONFIGS / "collapse/policies.yaml", ["generations=20", "num_seeds=16", "monitor_every=5"]
    )
    return RunStore.open(start_run(config, tmp_path).run_dir)


def test_report_embeds_one_figure_per_metric_with_its_key_and_names_every_arm(
    tmp_path: Path,
) -> None:
    store = _policies(tmp_path)
    config = load_config(CONFIGS / "collapse/policies.yaml", [])
    path = write_run_report(store, claims_for(config, store))
    page = path.read_text()
    figures = re.findall(
        r"<figure data-search='([^']+)'><img alt=\"([^\"]+)\" src=\"data:image/png;base64,([^\"]+)\"",
        page,
    )
    searchable = " ".join(search for search, _, _ in figures)
    for key in ("collapse/sigma_median", "monitor/recall", "monitor/tail_mass"):
        assert key in searchable
        assert describe(key).title in {html.unescape(alt) for _, alt, _ in figures}
    assert not any(re.search(r"\b(analytic|axis)/|_q10\b", search) for search, _, _ in figures)
    for _, _, data in figures:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    for arm, _ in store.arms():
        assert arm in page
    assert "holds" in page  # the claims table
    assert "http://" not in page and "https://" not in page  # self-contained


def test_every_figure_has_its_human_title_a_y_label_and_whole_generations(tmp_path: Path) -> None:
    store = _policies(tmp_path)
    arms = {name: store.metrics(name) for name, _ in store.arms()}
    for key in plottable_keys(arms):
        ax = metric_figure(arms, key).axes[0]
        info = describe(key)
        assert info.known, key
        assert ax.get_title() == info.title and ax.get_ylabel() == info.axis != "", key
        assert ax.get_xlabel() == "generation"
        assert all(float(t).is_integer() for t in ax.get_xticks()), key


def test_identical_arms_are_drawn_once_and_named_together() -> None:
    same = {g: {"collapse/sigma_median": 1.0 / (g + 1)} for g in range(5)}
    other = {g: {"collapse/sigma_median": 1.0} for g in range(5)}
    ax = metric_figure(
        {"star": same, "direct": dict(same), "real": other}, "collapse/sigma_median"
    ).axes[0]
    labels = [line.get_label().replace("\n", " ") for line in ax.get_lines()]
    assert labels == ["star = direct (identical)", "real"]


def test_constant_metrics_are_left_out_and_one_value_per_arm_is_a_dot_plot() -> None:
    flat = {
        "a": {g: {"monitor/novel_words": 0.0} for g in range(4)},
        "b": {0: {"monitor/novel_words": 0.0}},
    }
    assert uninformative(flat, "monitor/novel_words") == "0 in every arm and generation"
    single = {
        "hard": {
            0: {"eval/accuracy_mean": 0.8, "eval/accuracy_low": 0.78, "eval/accuracy_high": 0.82}
        },
        "soft": {
            0: {"eval/accuracy_mean": 0.9, "eval/accuracy_low": 0.88, "eval/accuracy_high": 0.93}
        },
    }
    assert uninformative(single, "eval/accuracy_mean") is None
    ax = metric_figure(single, "eval/accuracy_mean").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["hard", "soft"]
    assert ax.get_ylabel() == "share correct"
    assert dot_figure(single, "eval/accuracy_mean").axes[0].get_title() == ax.get_title()


def test_a_claim_figure_shades_where_the_claim_holds_and_draws_the_reference() -> None:
    arms = {
        arm: {g: {"collapse/sigma_median": 1 - g * s} for g in range(10)}
        for arm, s in (("a", 0.01), ("b", 0.05))
    }
    plot = ClaimPlot("collapse/sigma_median", ("a",), (0.9, 1.0), 0.95, "papers: 0.94-0.96")
    ax = claim_figure(arms, plot, "holds").axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "a" in labels and "b" not in labels and "papers: 0.94-0.96" in labels
    assert any(p.get_label() == "claim holds here" for p in ax.patches)
    assert any(t.get_text() == "holds" for t in ax.texts)


def test_numbered_metrics_form_a_family_drawn_per_arm() -> None:
    keys = [f"eval/accuracy_{d}_digits" for d in (10, 2, 1)] + ["eval/accuracy_trained_lengths"]
    keys += ["eval/pass_rate_2_steps", "eval/pass_rate_3_steps"]  # two members: no family
    found = families(keys)
    assert found == {
        "eval/accuracy_N_digits": [
            (1, "eval/accuracy_1_digits"),
            (2, "eval/accuracy_2_digits"),
            (10, "eval/accuracy_10_digits"),
        ]
    }
    arms = {
        arm: {g: {k: g / 3 for _, k in found["eval/accuracy_N_digits"]} for g in range(3)}
        for arm in ("star", "direct")
    }
    figure = family_figure(arms, "eval/accuracy_N_digits", found["eval/accuracy_N_digits"])
    assert [ax.get_title() for ax in figure.axes] == ["star", "direct"]
    assert figure.axes[0].get_ylabel() == "share correct"
    # a number at the end names a family too
    shares = families([f"class/share_of_digit_{d}" for d in range(10)])
    assert (
        list(shares) == ["class/share_of_digit_N"] and shares["class/share_of_digit_N"][9][0] == 9
    )
