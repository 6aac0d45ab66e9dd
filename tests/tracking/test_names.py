"""Tracked names: what MLflow accepts (letters, digits, `_ - . /`, spaces; no empty, `.` or
`..` level), derived from arm names and metric keys, known answers."""

from __future__ import annotations

import pytest

from selfimprove.core.config import ConfigError
from selfimprove.tracking import MAX_NAME, arm_prefixes, safe_key, tracked_key


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("collapse/sigma_median", "collapse/sigma_median"),
        ("eval/accuracy_3_digits", "eval/accuracy_3_digits"),
        ("arena/win-rate vs. mcts", "arena/win-rate vs. mcts"),
        ("a//b/", "a/b"),
        ("/./../x", "x"),
        ("ratio:p=0.5 (%)", "ratio_p_0.5 ___"),
        ("σ/größe", "_/gr__e"),
        ("", "_"),
    ],
)
def test_safe_key(key: str, name: str) -> None:
    assert safe_key(key) == name


def test_an_arm_is_one_level_and_names_are_cut_at_mlflows_limit() -> None:
    prefixes = arm_prefixes(["replace, mle, M=20", "star/rare"])
    assert prefixes == {"replace, mle, M=20": "replace_ mle_ M_20", "star/rare": "star_rare"}
    assert tracked_key("star_rare", "eval/accuracy") == "star_rare/eval/accuracy"
    assert len(tracked_key("arm", "k" * 400)) == MAX_NAME


def test_two_arms_tracked_under_one_name_are_refused() -> None:
    with pytest.raises(ConfigError, match="two arms would be tracked under one name"):
        arm_prefixes(["M=20", "M_20"])
