"""The Record base: typed dataclasses that round-trip through plain JSON, checked on the way in.

``from_dict`` walks the dataclass's type hints: nested records, ``list[T]``, ``dict[str, T]``,
``T | None``, numbers, strings and booleans. A value of the wrong type or an unknown key is a
:class:`RecordError` naming the field, so a reader never has to guess at keys or shapes.
Top-level records (those with a ``KIND``) carry ``schema_version`` and are read and written
with :meth:`Record.save_json` / :meth:`Record.from_json`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from qbench.errors import QBenchError
from qbench.records.io import read_json_object, write_json

SCHEMA_VERSION = 2
R = TypeVar("R", bound="Record")


class RecordError(QBenchError):
    """A workspace JSON file whose content does not match its record type."""


class Record:
    """Mixin for ``@dataclass`` records. ``KIND`` names a top-level record in messages."""

    KIND: ClassVar[str] = ""
    # how to rewrite a record of this kind: shown when a record cannot be read
    REWRITE: ClassVar[str] = "rerun the step that wrote it"
    # read-only properties added to to_dict() for readers without qbench; dropped by from_dict()
    DERIVED: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        for name in self.DERIVED:
            data[name] = _to_plain(getattr(self, name))
        if self.KIND:
            data = {"schema_version": SCHEMA_VERSION, **data}
        return data

    @classmethod
    def from_dict(cls: type[R], data: Any, where: str = "", rewrite: str = "") -> R:
        """Build and check a record; ``rewrite`` (the top-level record's fix) ends every error."""
        where = where or f"{cls.KIND or cls.__name__}:"
        rewrite = rewrite or cls.REWRITE
        if not isinstance(data, dict):
            raise RecordError(f"{where.rstrip(':')} is not a JSON object; {rewrite}.")
        data = dict(data)
        if cls.KIND:
            _check_version(data.pop("schema_version", None), where, rewrite)
        for name in cls.DERIVED:
            data.pop(name, None)
        hints = _hints(cls)
        unknown = sorted(set(data) - set(hints))
        if unknown:
            raise RecordError(
                f"{where} unknown field(s) {', '.join(unknown)} for a {cls.__name__}; {rewrite}."
            )
        values = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name in data:
                values[f.name] = _from_plain(hints[f.name], data[f.name], _child(where, f.name), rewrite)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecordError(f"{where} the field {f.name!r} is missing; {rewrite}.")
        return cls(**values)

    def save_json(self, path: str | Path) -> Path:
        return write_json(Path(path), self.to_dict())

    @classmethod
    def from_json(cls: type[R], path: str | Path) -> R:
        path = Path(path)
        what = cls.KIND or cls.__name__
        return cls.from_dict(read_json_object(path, what), f"{what} {path}:")


def _check_version(version: Any, where: str, rewrite: str) -> None:
    if version == SCHEMA_VERSION:
        return
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise RecordError(
            f"{where.rstrip(':')} has schema_version {version}, this qbench reads {SCHEMA_VERSION}; upgrade qbench."
        )
    if version is None:
        raise RecordError(
            f"{where.rstrip(':')} has no schema_version, so qbench did not write it; pass a file qbench wrote."
        )
    raise RecordError(
        f"{where.rstrip(':')} has schema_version {version!r} (an older qbench wrote it; this one reads "
        f"{SCHEMA_VERSION}); {rewrite} to rewrite it."
    )


def _child(where: str, name: str) -> str:
    """'result x.json:' + 'latency' -> 'result x.json: field latency'; nested fields join with dots."""
    return f"{where} field {name}" if where.endswith(":") else f"{where}.{name}"


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _to_plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


_NAMES = {int: "a whole number", float: "a number", str: "a string", bool: "true or false", Path: "a path"}


def _from_plain(tp: Any, value: Any, where: str, rewrite: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise RecordError(f"{where} is null but must have a value; {rewrite}.")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _from_plain(arg, value, where, rewrite)
            except RecordError as exc:
                errors.append(exc)
        raise errors[0]
    if value is None:
        # NaN and inf are written as null (strict JSON): a float field reads them back as NaN
        if tp is float:
            return float("nan")
        raise RecordError(f"{where} is null but must have a value; {rewrite}.")
    if origin is list:
        if not isinstance(value, list):
            raise RecordError(f"{where} must be a list, not {type(value).__name__}; {rewrite}.")
        (item,) = typing.get_args(tp) or (Any,)
        return [_from_plain(item, v, f"{where}[{i}]", rewrite) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordError(f"{where} must be an object, not {type(value).__name__}; {rewrite}.")
        _, item = typing.get_args(tp) or (str, Any)
        return {k: _from_plain(item, v, _child(where, k), rewrite) for k, v in value.items()}
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise RecordError(
                f"{where} is {value!r}, expected one of {', '.join(map(repr, allowed))}; {rewrite}."
            )
        return value
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp.from_dict(value, where, rewrite)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp in (str, bool):
        if isinstance(value, tp):
            return value
    elif tp is Path:
        if isinstance(value, str):
            return Path(value)
    else:
        raise TypeError(f"records cannot hold a field of type {tp!r} ({where})")
    raise RecordError(f"{where} is {type(value).__name__} {value!r:.40}, expected {_NAMES[tp]}; {rewrite}.")
