"""Configs: frozen pydantic models with `extra="forbid"`, loaded from YAML with `a.b=c` overrides.

Validation happens here, at the edge; every problem becomes one `ConfigError` whose message
names the field, so the CLI can print one line and exit 2.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from selfimprove.core.names import did_you_mean


class ConfigError(ValueError):
    """Bad user input: a missing file, unknown key, wrong type or impossible value."""


Count = Annotated[int, Field(ge=1)]
"""A size given in a list (hidden widths, digit lengths): at least 1."""


class ConfigModel(BaseModel):
    """Base of every config: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


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


class GateConfig(ConfigModel):
    """What decides whether a generation's candidate replaces the incumbent."""

    kind: Literal["accept_all", "no_regression"] = Field(
        "accept_all",
        description="accept_all: keep every candidate; no_regression: reject one whose metric "
        "is worse than the incumbent's by more than the tolerance",
    )
    metric: str | None = Field(
        None, description="no_regression: the metric compared (a validation metric, not the test)"
    )
    tolerance: float = Field(
        0.0, ge=0, allow_inf_nan=False, description="no_regression: how much worse is allowed"
    )
    higher_is_better: bool = Field(True, description="no_regression: the metric's direction")

    @model_validator(mode="after")
    def _metric_for_no_regression(self) -> GateConfig:
        if self.kind == "no_regression" and not self.metric:
            raise ValueError("a no_regression gate needs a metric")
        return self


class SimulatedReviewerConfig(ConfigModel):
    """A reviewer played by the computer, so oversight experiments and tests run unattended:
    it knows the truth (the loop's own check of an item, hidden from the verifier) and
    reports it with probability `accuracy`."""

    name: str = Field(
        "sim-1", pattern=r"^[A-Za-z0-9_.-]{1,40}$", description="the reviewer's name in the log"
    )
    accuracy: float = Field(0.9, ge=0, le=1, description="chance each decision is the truth")
    budget: int = Field(200, ge=0, description="items it reviews per generation at most")
    lenient: float = Field(
        0.0,
        ge=0,
        le=1,
        description="bias: chance it accepts an item it would have rejected (a tired reviewer)",
    )


class ReviewConfig(ConfigModel):
    """A review gate: what the model made waits for people (or simulated reviewers) before it
    can be trained on."""

    mode: Literal["all", "audit", "priority"] = Field(
        "all",
        description="all: nothing synthetic is trained on unless accepted; audit: a random "
        "hidden share is reviewed, rejected items are dropped, the rest pass; priority: as "
        "audit, plus every item the loop's monitor flags, queued first",
    )
    share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="audit, priority: the share of candidates drawn at random for review (the "
        "acceptance rate is measured on these alone, so it stays unbiased); 0 in priority mode: "
        "only what the monitor flags",
    )
    halt_below: float | None = Field(
        None,
        ge=0,
        le=1,
        description="halt the arm when the acceptance rate of a generation's reviews falls "
        "below this (e.g. 0.8)",
    )
    unreviewed: Literal["wait", "drop"] = Field(
        "wait",
        description="items still without an outcome: wait (the run waits for people; resume "
        "continues) or drop (not trained on; audit: not counted)",
    )
    overlap: float = Field(
        0.0, ge=0, le=1, description="share of items that need two reviewers who agree"
    )
    gold_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of items whose true answer is stored (hidden) to score reviewers",
    )
    reviewers: tuple[SimulatedReviewerConfig, ...] = Field(
        (), description="simulated reviewers (none: people review, `selfimprove review RUN`)"
    )
    control: bool = Field(
        False,
        description="also run every arm without review (named ARM/unreviewed), to measure the "
        "gate's effect",
    )

    @model_validator(mode="after")
    def _share(self) -> ReviewConfig:
        if self.share == 0 and self.mode != "priority":
            raise ValueError("share: 0 reviews nothing at random; only mode priority allows it")
        return self

    @model_validator(mode="after")
    def _distinct_reviewers(self) -> ReviewConfig:
        names = [r.name for r in self.reviewers]
        if len(set(names)) != len(names):
            raise ValueError("reviewers: each simulated reviewer needs its own name")
        return self


class ExecutorConfig(ConfigModel):
    """Where a loop's parallel pieces run (they compute the same thing anywhere)."""

    kind: Literal["local", "processes", "ray"] = Field(
        "local",
        description="local: in the loop's process, one piece after another; processes: "
        "spawned worker processes on this machine; ray: tasks on a Ray cluster (extra `ray`)",
    )
    num_workers: int = Field(
        2, ge=1, le=4096, description="processes / ray: pieces running at once"
    )
    address: str = Field(
        "local",
        max_length=500,
        description="ray: 'local' starts a private cluster in this process; 'auto' joins the "
        "one `ray start` runs on this machine; 'host:port' or 'ray://host:port' another",
    )
    max_retries: int = Field(
        3, ge=0, le=100, description="times a piece whose worker died is run again elsewhere"
    )


class TrackingConfig(ConfigModel):
    """An experiment tracker that also receives the run's settings, every committed
    generation's metrics and decision, and its report (`docs/tracking.md`); the run's own
    store stays the record."""

    kind: Literal["mlflow", "tensorboard"] = Field(
        description="mlflow: an MLflow tracking store (extra `mlflow`); tensorboard: scalars "
        "in TensorBoard event files (extra `tensorboard`)",
    )
    uri: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        description="mlflow: the tracking URI (sqlite:///path/mlflow.db, http://host:port); "
        "default sqlite:///RUNS_DIR/mlflow.db. tensorboard: the log folder; default "
        "RUNS_DIR/RUN/tensorboard",
    )
    experiment: str | None = Field(
        None,
        min_length=1,
        max_length=250,
        description="mlflow: the experiment the run is filed under; default the recipe's kind",
    )


class LoopConfig(ConfigModel):
    """Settings every experiment shares."""

    kind: str = Field(description="which experiment (`selfimprove run --explain KIND`)")
    seed: int = Field(
        0, ge=0, lt=2**63, description="run seed; every generation's streams derive from it"
    )
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
    gate: GateConfig = Field(GateConfig(), description="decides whether a candidate is kept")
    review: ReviewConfig | None = Field(
        None,
        description="a review gate before training (loops whose samples a reviewer can read: STaR, "
        "program synthesis)",
    )
    executor: ExecutorConfig = Field(
        ExecutorConfig(),
        description="where the loop's parallel pieces run (self-play chunks, sandbox runs); "
        "results are the same whichever runs them",
    )
    tracking: TrackingConfig | None = Field(
        None,
        description="also log params, per-generation metrics and the report to MLflow or "
        "TensorBoard (`docs/tracking.md`); results are the same with or without it",
    )

    # loops that hand pieces of work to an executor; the others refuse a non-local one
    parallel: ClassVar[bool] = False

    @model_validator(mode="after")
    def _executor_is_used(self) -> LoopConfig:
        if self.executor.kind != "local" and not self.parallel:
            raise ValueError(
                f"executor: {self.kind} runs in one process (self-play and program synthesis "
                "split their work); use kind: local"
            )
        return self

    def memory_bytes(self) -> int:
        """An estimate of the run's peak memory, checked before anything is allocated
        (`core/memory.py`); loops whose sizes can outgrow a machine override it."""
        return 0


ModelT = TypeVar("ModelT", bound=BaseModel)


MAX_DEPTH = 32  # nesting of mappings and lists in a config; recipes use 4
MAX_CONFIG_BYTES = 1_000_000


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML says keys are
    unique; PyYAML keeps the last one silently)."""


def _unique_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key: construct_mapping says so
            break
        if duplicate:
            line = key_node.start_mark.line + 1
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} at line {line}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with one-line errors for missing, binary, oversized, too deep or
    malformed files and for keys given twice."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = path.read_bytes()
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {len(raw)} bytes; a config is at most {MAX_CONFIG_BYTES}")
        text = raw.decode("utf-8")
        data = parse_yaml(text, str(path))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (not UTF-8)") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return data


def parse_yaml(text: str, source: str) -> Any:
    """One YAML document, with duplicate keys and nesting deeper than `MAX_DEPTH` refused."""
    if _nesting(text) > MAX_DEPTH:
        raise ConfigError(f"{source}: nested deeper than {MAX_DEPTH} levels")
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or ""
        detail = f": {problem}" if problem.startswith("duplicate key") else ""
        raise ConfigError(f"{source}: not valid YAML{where}{detail}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested deeper than {MAX_DEPTH} levels") from None
    if _depth(data) > MAX_DEPTH:
        raise ConfigError(f"{source}: nested deeper than {MAX_DEPTH} levels")
    return data


def _nesting(text: str) -> int:
    """An upper bound on flow-style nesting (`[[[...`), counted without parsing, so a
    hostile file cannot make the parser recurse; block nesting is bounded by `_depth`."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


def _depth(value: Any) -> int:
    """Nesting depth of parsed YAML, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        stack.extend((child, level + 1) for child in children)
    return deepest


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `data` with each `a.b=c` applied; values are parsed as YAML."""
    result = copy.deepcopy(data)
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {override!r}: expected KEY=VALUE, e.g. generations=20")
        try:
            value = parse_yaml(raw, f"override {override!r}")
        except ConfigError as error:
            if "nested deeper" in str(error):
                raise
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
            message = "unknown key" + _did_you_mean(model, first["loc"])
        if first["type"] == "value_error":  # our validators' own words, without pydantic's prefix
            message = message.removeprefix("Value error, ")
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


@dataclass(frozen=True)
class FieldDoc:
    """One config field as `run --explain` prints it."""

    path: str  # "train.batch_size"; "arms[].policy.mix" for fields of each list item
    type: str
    default: str
    description: str


def field_docs(model: type[BaseModel], prefix: str = "") -> list[FieldDoc]:
    """Every field of a config model, nested models and list items included, in order."""
    docs = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        nested, many = _nested_model(info.annotation)
        default = (
            "(required)"
            if info.is_required()
            else _shown(info.get_default(call_default_factory=True))
        )
        if nested is not None and not many:
            docs.append(FieldDoc(path, nested.__name__, "", info.description or ""))
            docs.extend(field_docs(nested, f"{path}."))
            continue
        docs.append(FieldDoc(path, _type_name(info.annotation), default, info.description or ""))
        if nested is not None:
            docs.extend(field_docs(nested, f"{path}[]."))
    return docs


def _did_you_mean(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """`; did you mean 'x'?` for an unknown key at `loc`: the closest field of the model
    that holds it, or nothing when none is close."""
    node: type[BaseModel] | None = model
    for part in loc[:-1]:
        if node is None:
            return ""
        if isinstance(part, str):
            field = node.model_fields.get(part)
            node = None if field is None else _nested_model(field.annotation)[0]
    if node is None:
        return ""
    return did_you_mean(str(loc[-1]), node.model_fields)


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The config model a field holds (and whether it holds a tuple of them)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if get_origin(annotation) in (tuple, list):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
            return args[0], True
    return None, False


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if get_origin(annotation) is None else None
    return text or re.sub(r"\b(typing|pathlib|selfimprove(\.\w+)*)\.", "", str(annotation))


def _shown(value: Any) -> str:
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump(mode="json"))
    if isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
        return f"{len(value)} item{'s' if len(value) > 1 else ''}"
    return json.dumps(value, default=str)
