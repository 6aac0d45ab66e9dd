"""Summaries of a quantity over seeds, as metric keys the report draws as a line and a band."""

from __future__ import annotations

import numpy as np

from selfimprove.core.records import Metrics


def spread_summary(prefix: str, values: np.ndarray) -> Metrics:
    """Median and the 10th / 90th percentiles over seeds: single runs are heavy-tailed."""
    q10, q50, q90 = np.percentile(values, [10, 50, 90])
    return {
        f"{prefix}_median": float(q50),
        f"{prefix}_q10": float(q10),
        f"{prefix}_q90": float(q90),
    }
