from pathlib import Path

import pytest

from selfimprove.core.config import ConfigError, apply_overrides, read_yaml
from selfimprove.experiments import load_config, parse_config


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("kind: collapse.gaussian\ngenerashuns: 3\n")
    with pytest.raises(ConfigError, match=r"generashuns: unknown key"):
        load_config(path)


def test_wrong_type_names_the_nested_field() -> None:
    data = {
        "kind": "collapse.gaussian",
        "arms": [{"policy": {"mix": "replace", "temperature": "hot"}}],
    }
    with pytest.raises(ConfigError, match=r"arms\.0\.policy\.temperature"):
        parse_config(data, "test")


def test_unknown_kind_lists_known_kinds() -> None:
    with pytest.raises(ConfigError, match=r"unknown experiment 'nope'.*collapse\.gaussian"):
        parse_config({"kind": "nope"}, "test")


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        read_yaml(Path("/nonexistent/config.yaml"))


def test_overrides_parse_yaml_values_and_reach_into_lists() -> None:
    data = {"a": {"b": 1}, "arms": [{"x": 1}, {"x": 2}]}
    result = apply_overrides(data, ["a.b=2.5", "arms.1.x=[1, 2]", "new.key=true"])
    assert result == {"a": {"b": 2.5}, "arms": [{"x": 1}, {"x": [1, 2]}], "new": {"key": True}}
    assert data["a"]["b"] == 1  # the input is not mutated


@pytest.mark.parametrize("override", ["novalue", "arms.7.x=1", "=3"])
def test_bad_overrides(override: str) -> None:
    with pytest.raises(ConfigError, match="override"):
        apply_overrides({"arms": [{"x": 1}]}, [override])


def test_alarm_needs_exactly_one_bound() -> None:
    data = {"kind": "collapse.gaussian", "alarms": [{"metric": "m", "action": "halt"}]}
    with pytest.raises(ConfigError, match="exactly one of below / above"):
        parse_config(data, "test")


def test_policy_needs_real_fraction_for_mixing() -> None:
    data = {"kind": "collapse.gaussian", "arms": [{"policy": {"mix": "mix_fixed_real"}}]}
    with pytest.raises(ConfigError, match="needs real_fraction > 0"):
        parse_config(data, "test")


def test_every_recipe_loads(configs: Path) -> None:
    recipes = sorted((configs / "collapse").glob("*.yaml"))
    assert len(recipes) >= 7
    for recipe in recipes:
        assert load_config(recipe).generations > 0


def test_every_config_field_says_what_it_is() -> None:
    """`run --explain` prints a description for every field of every experiment (a field
    added without one fails here)."""
    from selfimprove.core.config import field_docs
    from selfimprove.experiments import EXPERIMENTS

    missing = [
        f"{e.kind}: {doc.path}"
        for e in EXPERIMENTS
        for doc in field_docs(e.config)
        if not doc.description.strip()
    ]
    assert not missing, missing
    assert len(EXPERIMENTS) == len({e.kind for e in EXPERIMENTS}) == 22
