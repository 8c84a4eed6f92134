"""A small name -> factory registry used for models, datasets, exporters, runners and artifact formats.

The CLI takes its choices from these registries, so adding a variant is adding one module.
A registry fills itself on its first lookup (``names``, ``entry``, ``get``, ``in``, iteration):

- built-in modules, named with ``builtins=`` or discovered in a package with ``package=``
  (every public module except those in ``skip``), are imported in name order, strictly:
  a module that fails to import raises, it never silently drops its entries;
- third-party distributions add entries through the ``entry_point_group`` (e.g.
  ``[project.entry-points."qbench.exporters"] int4 = "mypkg.int4"``): loading the entry
  point imports the module, whose decorators register its entries.

Building a registry imports nothing, so ``import qbench`` stays lean.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from qbench.errors import QBenchError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    meta: dict[str, Any] = field(default_factory=dict)


class PluginError(QBenchError):
    """A third-party entry point that cannot be loaded."""


def package_modules(package: str, skip: Iterable[str] = ("base",)) -> list[str]:
    """The public modules of ``package`` (names starting with '_' and those in ``skip`` left out)."""
    path = importlib.import_module(package).__path__
    skipped = set(skip)
    return sorted(
        f"{package}.{info.name}"
        for info in pkgutil.iter_modules(path)
        if not info.name.startswith("_") and info.name not in skipped
    )


class Registry(Generic[T]):
    def __init__(
        self,
        kind: str,
        flag: str | None = None,
        *,
        builtins: Iterable[str] = (),
        package: str | None = None,
        skip: Iterable[str] = ("base",),
        entry_point_group: str | None = None,
    ) -> None:
        self.kind = kind
        self.flag = flag or f"--{kind}"
        self.entry_point_group = entry_point_group
        self._builtins = tuple(builtins)
        self._package = package
        self._skip = tuple(skip)
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = False

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, obj, dict(meta))
            return obj

        return decorator

    # ---------------------------------------------------------------- lazy, strict loading

    def builtin_modules(self) -> list[str]:
        found = list(self._builtins)
        if self._package:
            found += [m for m in package_modules(self._package, self._skip) if m not in found]
        return found

    def load(self) -> None:
        """Import the built-in modules, then the entry points (once; a failure raises every time)."""
        if self._loaded:
            return
        # set first: a module may look names up while it is being imported
        self._loaded = True
        try:
            for module in self.builtin_modules():
                self._import(module, lambda module=module: importlib.import_module(module))
            for point in self._entry_points():
                self._import(point.value, lambda point=point: self._load_entry_point(point))
        except BaseException:
            self._loaded = False
            raise

    def _import(self, what: str, load: Callable[[], Any]) -> None:
        before = set(self._entries)
        try:
            load()
        except BaseException:
            # forget what the broken module registered, so the next lookup retries and raises again
            for name in set(self._entries) - before:
                del self._entries[name]
            raise

    def _entry_points(self) -> list[importlib.metadata.EntryPoint]:
        if not self.entry_point_group:
            return []
        return sorted(importlib.metadata.entry_points(group=self.entry_point_group), key=lambda p: p.name)

    def _load_entry_point(self, point: importlib.metadata.EntryPoint) -> None:
        dist = f"{point.dist.name} {point.dist.version}" if point.dist else "an unknown distribution"
        try:
            point.load()
        except Exception as exc:
            raise PluginError(
                f"the {self.entry_point_group} entry point {point.name!r} = {point.value!r} of {dist} "
                f"failed to load ({type(exc).__name__}: {exc}); fix or uninstall that package."
            ) from exc

    # ---------------------------------------------------------------- lookups

    def entry(self, name: str) -> Entry[T]:
        self.load()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise QBenchError(
                f"unknown {self.kind} {name!r}{hint}; pass {self.flag} with one of: "
                f"{', '.join(self.names())}."
            ) from None

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def names(self) -> list[str]:
        self.load()
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        self.load()
        return iter(list(self._entries.values()))
