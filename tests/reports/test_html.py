import base64
import re
from pathlib import Path

from selfimprove.core.store import RunStore
from selfimprove.experiments import claims_for, load_config, start_run
from selfimprove.reports.html import write_run_report
from tests.conftest import CONFIGS


def test_report_embeds_one_png_per_metric_and_names_every_arm(tmp_path: Path) -> None:
    config = load_config(
        CONFIGS / "collapse/policies.yaml", ["generations=20", "num_seeds=16", "monitor_every=5"]
    )
    store = RunStore.open(start_run(config, tmp_path).run_dir)
    path = write_run_report(store, claims_for(config, store))
    page = path.read_text()
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    keys = {alt for alt, _ in images}
    assert {"collapse/sigma_median", "monitor/recall", "monitor/tail_mass"} <= keys
    assert not any(key.startswith(("analytic/", "axis/")) or key.endswith("_q10") for key in keys)
    for _, data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    for arm, _ in store.arms():
        assert arm in page
    assert "holds" in page  # the claims table
    assert "http://" not in page and "https://" not in page  # self-contained


def test_numbered_metrics_form_a_family_drawn_per_arm() -> None:
    from selfimprove.reports.plots import families, plot_family

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
    png = plot_family(arms, "eval/accuracy_N_digits", found["eval/accuracy_N_digits"])
    assert png.startswith(b"\x89PNG")
    # a number at the end names a family too
    shares = families([f"class/share_of_digit_{d}" for d in range(10)])
    assert (
        list(shares) == ["class/share_of_digit_N"] and shares["class/share_of_digit_N"][9][0] == 9
    )
