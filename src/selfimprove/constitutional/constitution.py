"""A constitution: the short list of principles the model critiques and revises its own answers
by (Bai et al. 2022, sections 3 and 4).

Each `Principle` carries the three texts the loop puts in front of the model: a critique request
(what to look for in the answer), a revision request (how to rewrite it) and, for AI preference
labels, a choice instruction (which of two answers is better by this principle). A principle may
also name a training checker (`checkers.TRAINING_CHECKERS`) that tests it programmatically; the
held-out checkers are never named here, so evaluation stays out of the training signal.

Constitutions ship as YAML in `constitutions/` (`load_constitution("default")`) or come from a
user's file; the Hugging Face CAI recipe's JSON format is read by `from_hf`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from selfimprove.constitutional.checkers import TRAINING_CHECKERS
from selfimprove.core.config import ConfigError, ConfigModel, read_yaml, validate
from selfimprove.core.names import did_you_mean

SHIPPED = Path(__file__).resolve().parent / "constitutions"
MAX_REQUEST_CHARS = 2000  # a sanity bound at the edge; the shipped requests are <= 200


class Principle(ConfigModel):
    """One principle: what to criticise, how to revise, and how to choose between answers."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="short slug, e.g. privacy")
    critique_request: str = Field(
        min_length=1,
        max_length=MAX_REQUEST_CHARS,
        description="asks the model to find what is wrong with its answer by this principle",
    )
    revision_request: str = Field(
        min_length=1,
        max_length=MAX_REQUEST_CHARS,
        description="asks the model to rewrite its answer so the critique no longer applies",
    )
    choice_instruction: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_REQUEST_CHARS,
        description="a question for AI preference labels, e.g. 'Which response is less harmful?'",
    )
    checker: str | None = Field(
        None,
        description="a training checker (checkers.TRAINING_CHECKERS) that tests this principle "
        "programmatically",
    )

    @field_validator("checker")
    @classmethod
    def _known_checker(cls, name: str | None) -> str | None:
        if name is not None and name not in TRAINING_CHECKERS:
            hint = did_you_mean(name, TRAINING_CHECKERS) or (
                f"; training checkers: {', '.join(sorted(TRAINING_CHECKERS))}"
            )
            raise ValueError(f"unknown checker {name!r}{hint}")
        return name


class Constitution(ConfigModel):
    """A named, ordered set of principles with distinct ids."""

    name: str = Field(min_length=1, max_length=100, description="what the constitution is called")
    principles: tuple[Principle, ...] = Field(min_length=1, description="the principles, in order")

    @model_validator(mode="after")
    def _unique_ids(self) -> Constitution:
        ids = [p.id for p in self.principles]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"principles: id {repeated[0]!r} is given more than once")
        return self

    def principle(self, id: str) -> Principle:
        """The principle with this id; `KeyError` (with a "did you mean") when there is none."""
        for principle in self.principles:
            if principle.id == id:
                return principle
        ids = [p.id for p in self.principles]
        raise KeyError(f"no principle {id!r} in constitution {self.name!r}{did_you_mean(id, ids)}")


def shipped_constitutions() -> tuple[str, ...]:
    """Names of the constitutions that ship with the package (`default`, ...)."""
    return tuple(sorted(path.stem for path in SHIPPED.glob("*.yaml")))


def load_constitution(source: str) -> Constitution:
    """A shipped constitution by name (`default`) or one from a YAML file at the path `source`.
    Every problem (missing file, bad YAML, unknown or missing field, unknown checker, repeated
    id) is a one-line `ConfigError`."""
    shipped = shipped_constitutions()
    if source in shipped:
        path = SHIPPED / f"{source}.yaml"
    else:
        path = Path(source)
        looks_like_path = path.suffix != "" or len(path.parts) > 1
        if not path.is_file() and not looks_like_path:
            hint = did_you_mean(source, shipped) or f"; shipped: {', '.join(shipped)}"
            raise ConfigError(
                f"unknown constitution {source!r}{hint} (or give a path to a YAML file)"
            )
    return validate(Constitution, read_yaml(path), str(path))


def from_hf(path: str | Path) -> Constitution:
    """Import a constitution in the format of Hugging Face's CAI recipe (JSON, or the same
    structure in YAML): `{"constitutions": [{"critic": ..., "revision": ...}, ...],
    "system_chat": [...]}`. The i-th entry becomes principle `hf-i` (from 1) with the critic as
    its critique request and the revision as its revision request; there is no choice
    instruction or checker. `system_chat` (the recipe's few-shot example conversations) is
    ignored: our loop writes its own prompts. Any other problem is a one-line `ConfigError`."""
    path = Path(path)
    data = _read_json_or_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("constitutions"), list):
        raise ConfigError(f"{path}: expected a mapping with a list under 'constitutions'")
    unknown = sorted(set(data) - {"constitutions", "system_chat"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r} (expected constitutions, system_chat)"
        )
    principles = []
    for i, entry in enumerate(data["constitutions"], start=1):
        if not isinstance(entry, dict) or set(entry) != {"critic", "revision"}:
            raise ConfigError(
                f"{path}: constitutions[{i - 1}]: expected exactly the keys critic and revision"
            )
        principles.append(
            {
                "id": f"hf-{i}",
                "critique_request": entry["critic"],
                "revision_request": entry["revision"],
            }
        )
    return validate(Constitution, {"name": path.stem, "principles": principles}, str(path))


def _read_json_or_yaml(path: Path) -> Any:
    if path.suffix.lower() != ".json":
        return read_yaml(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (not UTF-8)") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON at line {error.lineno}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
