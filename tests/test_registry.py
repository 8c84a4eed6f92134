"""Registries: lazy and strict loading of built-in modules, package discovery, entry points."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qbench.errors import QBenchError
from qbench.registry import PluginError, Registry

REPO = Path(__file__).resolve().parents[1]


def _package(root: Path, name: str, modules: dict[str, str]) -> None:
    """A real package ``name`` under ``root`` (put on sys.path by the caller)."""
    pkg = root / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for module, body in modules.items():
        (pkg / f"{module}.py").write_text(textwrap.dedent(body))


def _registering(*names: str) -> str:
    """Module source that records its import and registers ``names`` in the test registry."""
    lines = ["import sys", "from tests_registry_host import REG", "sys.modules[__name__].imported = True"]
    lines += [f"REG.register({n!r}, origin=__name__)({n!r})" for n in names]
    return "\n".join(lines) + "\n"


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A module holding the registry under test, importable by the tmp packages' modules."""
    import importlib

    monkeypatch.syspath_prepend(str(tmp_path))

    def make(**kwargs) -> Registry:
        (tmp_path / "tests_registry_host.py").write_text("REG = None\n")
        module = importlib.import_module("tests_registry_host")
        module.REG = Registry("thing", **kwargs)
        return module.REG

    yield make
    for name in [m for m in sys.modules if m.startswith(("tests_registry_", "regpkg"))]:
        del sys.modules[name]


def test_building_a_registry_imports_nothing_until_the_first_lookup(tmp_path, host):
    _package(tmp_path, "regpkg_lazy", {"alpha": _registering("a")})
    reg = host(builtins=("regpkg_lazy.alpha",))
    assert "regpkg_lazy.alpha" not in sys.modules
    reg.register("manual")("m")  # registering does not load either
    assert "regpkg_lazy.alpha" not in sys.modules
    assert "a" in reg
    assert sys.modules["regpkg_lazy.alpha"].imported
    assert reg.names() == ["manual", "a"]


@pytest.mark.parametrize("lookup", ["names", "entry", "get", "contains", "iter"])
def test_every_lookup_loads_the_builtins(tmp_path, host, lookup):
    _package(tmp_path, "regpkg_each", {"alpha": _registering("a")})
    reg = host(builtins=("regpkg_each.alpha",))
    calls = {
        "names": lambda: reg.names(),
        "entry": lambda: reg.entry("a"),
        "get": lambda: reg.get("a"),
        "contains": lambda: "a" in reg,
        "iter": lambda: [e.name for e in reg],
    }
    calls[lookup]()
    assert "regpkg_each.alpha" in sys.modules


def test_package_discovery_skips_base_and_private_modules(tmp_path, host):
    _package(
        tmp_path,
        "regpkg_disc",
        {
            "base": "raise AssertionError('base must not be imported by discovery')\n",
            "_helpers": "raise AssertionError('private modules are not entries')\n",
            "zeta": _registering("z"),
            "alpha": _registering("a1", "a2"),
        },
    )
    reg = host(package="regpkg_disc")
    # adding a mode is adding a module: no list names them; name order of the modules
    assert reg.names() == ["a1", "a2", "z"]
    assert reg.entry("z").meta == {"origin": "regpkg_disc.zeta"}


def test_a_broken_builtin_module_is_an_error_not_a_missing_entry(tmp_path, host):
    _package(
        tmp_path,
        "regpkg_broken",
        {
            "alpha": _registering("a"),
            "beta": _registering("b") + "import a_module_that_does_not_exist_qbench\n",
        },
    )
    reg = host(package="regpkg_broken")
    with pytest.raises(ImportError, match="a_module_that_does_not_exist_qbench"):
        reg.names()
    # still an error on the next lookup (never a silently shorter list), and 'b' was rolled back
    with pytest.raises(ModuleNotFoundError):
        "a" in reg  # noqa: B015
    assert "b" not in reg._entries


def test_unknown_name_is_one_sentence_naming_the_choices(tmp_path, host):
    _package(tmp_path, "regpkg_unknown", {"alpha": _registering("int8-ptq")})
    reg = host(builtins=("regpkg_unknown.alpha",), flag="--mode")
    with pytest.raises(
        QBenchError, match=r"unknown thing 'int9-ptq' \(did you mean 'int8-ptq'\?\); pass --mode"
    ):
        reg.entry("int9-ptq")


def _dist(root: Path, name: str, group: str, entry: str) -> None:
    """A real installed-distribution record (dist-info with entry_points.txt) under ``root``."""
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry}\n")


def test_entry_points_add_third_party_entries(tmp_path, host):
    _package(tmp_path, "regpkg_third", {"plugin": _registering("third")})
    _dist(tmp_path, "qbench-test-plugin", "qbench.test-things", "third = regpkg_third.plugin")
    reg = host(entry_point_group="qbench.test-things")
    assert "regpkg_third.plugin" not in sys.modules
    assert reg.names() == ["third"]


def test_a_broken_entry_point_names_its_distribution(tmp_path, host):
    _dist(tmp_path, "qbench-broken-plugin", "qbench.test-broken", "gone = regpkg_missing.plugin")
    reg = host(entry_point_group="qbench.test-broken")
    with pytest.raises(PluginError, match=r"'gone'.*qbench-broken-plugin 1\.0.*fix or uninstall"):
        reg.names()


def _python(code: str, path: Path) -> subprocess.CompletedProcess:
    env_path = f"{path}:{REPO}"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_third_party_exporter_shows_up_in_modes(tmp_path):
    """A real entry point in the ``qbench.exporters`` group adds a mode to the real registry."""
    (tmp_path / "qbench_int2_plugin.py").write_text(
        textwrap.dedent(
            """
            from qbench.exporters.base import register_exporter

            @register_exporter("int2-toy", ops_unit="GOP/s", libraries=("torch",), description="toy")
            def export(ctx, out_dir):
                raise NotImplementedError
            """
        )
    )
    _dist(tmp_path, "qbench-int2-plugin", "qbench.exporters", "int2 = qbench_int2_plugin")
    proc = _python(
        """
        import sys
        from qbench.exporters.base import EXPORTERS, modes
        assert "qbench.exporters.int8_ptq" not in sys.modules, "built-ins imported before a lookup"
        names = modes()
        print(names[-1], EXPORTERS.entry("int2-toy").meta["ops_unit"], "int8-ptq" in names)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["int2-toy", "GOP/s", "True"]


def test_importing_the_exporter_and_runner_bases_loads_no_backend(tmp_path):
    proc = _python(
        """
        import sys
        import qbench.exporters.base, qbench.runners.base, qbench.artifacts
        loaded = [m for m in ("qbench.exporters.onnx_export", "qbench.runners.torch_runner",
                              "qbench.artifacts.onnx", "onnxruntime", "tensorrt") if m in sys.modules]
        print(loaded)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
