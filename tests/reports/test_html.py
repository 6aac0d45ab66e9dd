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
