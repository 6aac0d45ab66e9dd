"""Experiment trackers (`core/tracking.py` says what they are sent and when): `mlflow.py`
(extra `mlflow`) and `tensorboard.py` (extra `tensorboard`), each imported only when a
recipe's `tracking.kind` names it.

Names: a tracked metric is `<arm>/<metric key>`, the metric key as the store keeps it
(`collapse/sigma_median`), after the arm's name. MLflow allows letters, digits and `_ - . /`
and spaces in a name, so every other character becomes `_` (an arm `replace, mle, M=20`
becomes `replace_ mle_ M_20`), a `/` in an arm's name too (the arm stays one level), and
empty, `.` and `..` levels are dropped. Two arms whose names map to the same name are a
config error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from selfimprove.core.config import ConfigError

MAX_NAME = 250  # MLflow's limit on a metric, param or tag key


def safe_key(key: str) -> str:
    """`key` with only the characters (and `/`-separated levels) MLflow accepts."""
    cleaned = re.sub(r"[^A-Za-z0-9_\-. /]", "_", key)
    levels = [level for level in cleaned.split("/") if level.strip(".")]
    return "/".join(levels)[:MAX_NAME] or "_"


def arm_prefixes(arms: Sequence[str]) -> dict[str, str]:
    """arm -> the one-level name its metrics are filed under."""
    prefixes = {arm: safe_key(arm.replace("/", "_")) for arm in arms}
    if len(set(prefixes.values())) != len(prefixes):
        raise ConfigError(
            f"tracking: two arms would be tracked under one name ({sorted(prefixes.values())}); "
            "rename one"
        )
    return prefixes


def tracked_key(prefix: str, key: str) -> str:
    return f"{prefix}/{safe_key(key)}"[:MAX_NAME]
