"""Configs: frozen pydantic models with `extra="forbid"`, loaded from YAML with `a.b=c` overrides.

Validation happens here, at the edge; every problem becomes one `ConfigError` whose message
names the field, so the CLI can print one line and exit 2.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """Bad user input: a missing file, unknown key, wrong type or impossible value."""


class ConfigModel(BaseModel):
    """Base of every config: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AlarmConfig(ConfigModel):
    """A threshold on one metric; when crossed, the engine warns, halts or rolls back."""

    metric: str = Field(description="metric key, e.g. collapse/sigma_median")
    below: float | None = Field(None, description="trip when the metric falls below this")
    above: float | None = Field(None, description="trip when the metric rises above this")
    action: Literal["warn", "halt", "rollback"] = Field(
        "warn", description="warn: log it; halt: stop the arm; rollback: keep the last good model"
    )

    @model_validator(mode="after")
    def _one_bound(self) -> AlarmConfig:
        if (self.below is None) == (self.above is None):
            raise ValueError("give exactly one of below / above")
        return self


class LoopConfig(ConfigModel):
    """Settings every experiment shares."""

    seed: int = Field(0, description="run seed; every generation's streams derive from it")
    generations: int = Field(10, ge=0, description="generations after generation 0")
    checkpoint_every: int = Field(
        1,
        ge=0,
        description="snapshot the loop state every N generations (0: never; resume replays)",
    )
    alarms: tuple[AlarmConfig, ...] = Field((), description="guards checked every generation")
    max_consecutive_rollbacks: int = Field(
        5, ge=1, description="an arm halts after this many rollbacks in a row"
    )


ModelT = TypeVar("ModelT", bound=BaseModel)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with one-line errors for missing or malformed files."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `data` with each `a.b=c` applied; values are parsed as YAML."""
    result = copy.deepcopy(data)
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {override!r}: expected KEY=VALUE, e.g. generations=20")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"override {override!r}: value is not valid YAML") from None
        _set_path(result, key.split("."), value, override)
    return result


def validate(model: type[ModelT], data: dict[str, Any], source: str) -> ModelT:
    """Validate `data` into `model`; the first problem becomes a one-line `ConfigError`."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(top level)"
        count = error.error_count()
        more = f" (and {count - 1} more problem{'s' if count > 2 else ''})" if count > 1 else ""
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        raise ConfigError(f"{source}: {field}: {message}{more}") from None


def _set_path(data: dict[str, Any], path: list[str], value: Any, override: str) -> None:
    node: Any = data
    for i, part in enumerate(path[:-1]):
        if isinstance(node, list):
            node = _list_item(node, part, override)
            continue
        if part not in node or node[part] is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict | list):
            prefix = ".".join(path[: i + 1])
            raise ConfigError(f"override {override!r}: {prefix} is not a mapping")
    last = path[-1]
    if isinstance(node, list):
        node[_list_index(node, last, override)] = value
    else:
        node[last] = value


def _list_index(items: list[Any], part: str, override: str) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise ConfigError(f"override {override!r}: {part!r} is not an index below {len(items)}")
    return int(part)


def _list_item(items: list[Any], part: str, override: str) -> Any:
    return items[_list_index(items, part, override)]
