"""The layering of DESIGN.md section 2: a module imports only from its own layer or below.

Every import statement counts, lazy ones inside functions included, so a lower layer cannot
reach up even at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import qbench

PACKAGE = Path(qbench.__file__).parent

# lowest first; a top-level module or package of qbench -> its layer
LAYERS: list[tuple[str, ...]] = [
    (
        "__init__",
        "errors",
        "records",
        "registry",
        "workspace",
        "env",
        "capabilities",
        "lock",
        "preflight",
        "allocator",
    ),
    ("data", "baselines", "artifacts"),
    ("exporters", "runners"),
    ("harness",),
    ("reports", "regress"),
    ("pipeline",),
    ("cli", "__main__"),
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}
# within a layer these pairs must not import each other at all
SIBLINGS_APART = [("exporters", "runners")]


def _unit(module: str) -> str | None:
    """'qbench.harness.sweep' -> 'harness'; None for a module outside qbench."""
    parts = module.split(".")
    if parts[0] != "qbench":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = ".".join(("qbench", *path.relative_to(PACKAGE).with_suffix("").parts))
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            if module == "qbench":  # from qbench import harness
                found += [(node.lineno, f"qbench.{alias.name}") for alias in node.names]
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_unit_of_the_package_has_a_layer():
    units = {_unit(".".join(("qbench", *p.relative_to(PACKAGE).with_suffix("").parts))) for p in _modules()}
    assert units <= set(LAYER_OF), f"give these a layer in LAYERS: {sorted(units - set(LAYER_OF))}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_only_its_layer_or_below(path: Path):
    own = _unit(".".join(("qbench", *path.relative_to(PACKAGE).with_suffix("").parts)))
    bad = []
    for line, module in _imports(path):
        target = _unit(module)
        if target is None or target == own:
            continue
        if target not in LAYER_OF:
            continue  # e.g. 'qbench.__version__' through 'from qbench import __version__'
        if LAYER_OF[target] > LAYER_OF[own] or {own, target} in [set(p) for p in SIBLINGS_APART]:
            bad.append(f"line {line}: {module} ({target}, layer {LAYER_OF[target]})")
    assert not bad, f"{own} (layer {LAYER_OF[own]}) imports upward:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports(path: Path):
    """Every module imports on its own: a broken built-in is an error here, not a missing mode."""
    import importlib

    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    importlib.import_module(".".join(("qbench", *parts)))
