"""Snapshots that cannot run code: a loop state as JSON plus numpy arrays, never pickle.

A snapshot folder holds `snapshot.json` (schema version, a checksum of the arrays, and the
state as a tree) and `arrays.npz` (every array, read with `allow_pickle=False`). The tree
holds plain JSON values and tagged nodes:

    {"$tuple": [...]}                       a tuple (a JSON list is a list)
    {"$dict": [[key, value], ...]}          a dict with any encodable keys
    {"$array": "a3"}                        numpy array `a3` of `arrays.npz`
    {"$scalar": "<f8", "value": 0.5}        a numpy scalar
    {"$tensor": "torch", "array": "a4", "dtype": "bfloat16", "layout": ""}
                                            an array of a library core does not import,
                                            through a `TensorCodec` the caller passes
    {"$record": "selfimprove.x:Name", "fields": {...}}   a frozen dataclass
    {"$config": "selfimprove.x:Name", "data": {...}}     a pydantic config model

Reading resolves a record's type only among classes of `selfimprove` modules that are
already imported, defined in that module under public names, and only frozen dataclasses
or pydantic models (`_resolve`): a snapshot cannot import a module or call anything but our
own record constructors and validators. Anything else
(a foreign type, a renamed class, a damaged or edited file, an older schema) is a
`SnapshotError` with one line that says which. The run store records each snapshot's
checksum in the run's database, so a snapshot file edited or damaged afterwards is refused;
someone who rewrites the database and the files together is not detected (there is no secret
key), and can at most make a resume compute from a state our own types can hold.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import io
import json
import math
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

SCHEMA = 2  # schema 1 was a pickle (`state.pkl`), refused since
STATE_FILE = "snapshot.json"
ARRAYS_FILE = "arrays.npz"
LEGACY_FILE = "state.pkl"
TRANSIENT = "snapshot_transient"
"""Field metadata key: a field left out of snapshots and rebuilt by its default (a cache)."""


class SnapshotError(RuntimeError):
    """A snapshot that cannot be read: damaged, edited, foreign, or of an older schema."""


@dataclass(frozen=True)
class TensorCodec:
    """How arrays of a library `core` does not import (torch) become numpy arrays and back,
    bit for bit. `to_numpy` returns the array and a dtype name (and a layout tag);
    `from_numpy` inverts it."""

    tag: str
    kind: type
    to_numpy: Callable[[Any], tuple[np.ndarray, str, str]]
    from_numpy: Callable[[np.ndarray, str, str], Any]


def write_snapshot(folder: Path, state: Any, codecs: Sequence[TensorCodec] = ()) -> None:
    """Write `state` into `folder` (which the caller renames into place when done)."""
    arrays: dict[str, np.ndarray] = {}
    tree = _Encoder(arrays, codecs).encode(state)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stubs take **kwds as Any
    data = buffer.getvalue()
    (folder / ARRAYS_FILE).write_bytes(data)
    header = {"schema": SCHEMA, "arrays_sha256": hashlib.sha256(data).hexdigest(), "state": tree}
    (folder / STATE_FILE).write_text(json.dumps(header, separators=(",", ":")))


def read_snapshot(folder: Path, codecs: Sequence[TensorCodec] = ()) -> Any:
    """The state written by `write_snapshot`, or `SnapshotError`."""
    where = f"snapshot {folder}"
    try:
        header = json.loads((folder / STATE_FILE).read_text())
        data = (folder / ARRAYS_FILE).read_bytes()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise SnapshotError(f"{where} cannot be read: {_first_line(error)}") from None
    if not isinstance(header, dict) or header.get("schema") != SCHEMA:
        found = header.get("schema") if isinstance(header, dict) else None
        raise SnapshotError(f"{where} has schema {found!r}; this selfimprove reads {SCHEMA}")
    if hashlib.sha256(data).hexdigest() != header.get("arrays_sha256"):
        raise SnapshotError(f"{where}: {ARRAYS_FILE} does not match its checksum (damaged)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return _Decoder(arrays, codecs).decode(header.get("state"))
    except SnapshotError as error:
        raise SnapshotError(f"{where}: {error}") from None
    except (
        ValueError,
        TypeError,
        KeyError,
        OSError,
        zipfile.BadZipFile,
        RecursionError,
        ArithmeticError,
        MemoryError,
        RuntimeError,  # a codec refusing an array (torch raises RuntimeError)
    ) as error:
        raise SnapshotError(f"{where} is malformed: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _type_name(kind: type) -> str:
    return f"{kind.__module__}:{kind.__qualname__}"


@dataclass
class _Encoder:
    arrays: dict[str, np.ndarray]
    codecs: Sequence[TensorCodec]

    def encode(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"$float": repr(value)}
        if isinstance(value, np.ndarray):
            return {"$array": self._array(value)}
        if isinstance(value, np.generic):
            return {"$scalar": value.dtype.str, "value": self.encode(value.item())}
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            return {"$tuple": [self.encode(v) for v in value]}
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, dict):
            return {"$dict": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        if isinstance(value, BaseModel):
            return {"$config": _type_name(type(value)), "data": value.model_dump(mode="json")}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {
                f.name: self.encode(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if f.init and not f.metadata.get(TRANSIENT)
            }
            return {"$record": _type_name(type(value)), "fields": fields}
        for codec in self.codecs:
            if isinstance(value, codec.kind):
                array, dtype, layout = codec.to_numpy(value)
                return {
                    "$tensor": codec.tag,
                    "array": self._array(array),
                    "dtype": dtype,
                    "layout": layout,
                }
        raise TypeError(f"a snapshot cannot hold a {type(value).__qualname__}")

    def _array(self, array: np.ndarray) -> str:
        if array.dtype.hasobject:
            raise TypeError("a snapshot cannot hold an array of Python objects")
        name = f"a{len(self.arrays)}"
        self.arrays[name] = array
        return name


@dataclass
class _Decoder:
    arrays: dict[str, np.ndarray]
    codecs: Sequence[TensorCodec]

    def decode(self, node: Any) -> Any:
        if node is None or isinstance(node, bool | int | float | str):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict) or len(node) == 0:
            raise SnapshotError(f"unexpected node {str(node)[:60]!r}")
        tag = next(iter(node))
        match tag:
            case "$float":
                return float(_text(node["$float"], ("nan", "inf", "-inf")))
            case "$tuple":
                return tuple(self.decode(v) for v in _list(node["$tuple"]))
            case "$dict":
                return {self._key(pair[0]): self.decode(pair[1]) for pair in _pairs(node["$dict"])}
            case "$array":
                return self._array(node["$array"])
            case "$scalar":
                kind = np.dtype(_text(node["$scalar"]))
                value = self.decode(node["value"])
                if kind.kind not in "biuf" or not isinstance(value, bool | int | float):
                    raise SnapshotError(f"unexpected scalar {node['$scalar']!r}")
                return kind.type(value)
            case "$tensor":
                codec = next((c for c in self.codecs if c.tag == node["$tensor"]), None)
                if codec is None:
                    raise SnapshotError(f"no reader for {node['$tensor']!r} arrays")
                array = self._array(node["array"])
                return codec.from_numpy(array, _text(node["dtype"]), _text(node["layout"]))
            case "$config":
                kind = _resolve(node["$config"], config=True)
                try:
                    return kind.model_validate(node["data"])
                except ValidationError as error:
                    raise SnapshotError(f"{node['$config']}: {error.errors()[0]['msg']}") from None
            case "$record":
                kind = _resolve(node["$record"], config=False)
                fields = node["fields"]
                if not isinstance(fields, dict):
                    raise SnapshotError(f"{node['$record']}: fields are not a mapping")
                return kind(**{_text(k): self.decode(v) for k, v in fields.items()})
        raise SnapshotError(f"unknown tag {tag!r}")

    def _key(self, node: Any) -> Any:
        key = self.decode(node)
        hash(key)  # a TypeError (unhashable key) is reported as malformed
        return key

    def _array(self, name: Any) -> np.ndarray:
        if not isinstance(name, str) or name not in self.arrays:
            raise SnapshotError(f"names a missing array {name!r}")
        return self.arrays[name]


def _text(value: Any, allowed: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str) or (allowed is not None and value not in allowed):
        raise SnapshotError(f"unexpected value {str(value)[:60]!r}")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise SnapshotError("expected a list")
    return value


def _pairs(value: Any) -> list[list[Any]]:
    pairs = _list(value)
    if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise SnapshotError("a dict's items are not pairs")
    return pairs


def _resolve(name: Any, config: bool) -> Any:
    """Our own record or config class named `module:qualname`, or an error.

    The module must be an already imported `selfimprove` module, every step of the qualname
    a public class attribute looked up without running any `__getattr__` (never a module,
    so the lookup cannot leave our code or import anything), and the class defined in that
    very module: a frozen dataclass for records, a pydantic model for configs.
    """
    module_name, _, qualname = _text(name).partition(":")
    module = sys.modules.get(module_name)
    parts = qualname.split(".")
    if not module_name.startswith("selfimprove.") or module is None or not qualname:
        raise SnapshotError(f"names a type it may not use: {name!r}")
    found: Any = module
    for part in parts:
        if part.startswith("_"):
            raise SnapshotError(f"names a type it may not use: {name!r}")
        found = inspect.getattr_static(found, part, None)
        if not isinstance(found, type):
            raise SnapshotError(f"names a type this selfimprove does not have: {name!r}")
    if found.__module__ != module_name or found.__qualname__ != qualname:
        raise SnapshotError(f"names a type it may not use: {name!r}")
    if config:
        allowed = issubclass(found, BaseModel)
    else:
        params = getattr(found, "__dataclass_params__", None)
        allowed = dataclasses.is_dataclass(found) and params is not None and params.frozen
    if not allowed:
        raise SnapshotError(f"names a type this selfimprove does not have: {name!r}")
    return found
