"""The built wheel ships the Jinja templates as declared package data, without setuptools warnings."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_templates_and_builds_without_package_warnings(tmp_path):
    # a copy of the sources, so the build's own folders never land in the checkout
    src, dist = tmp_path / "src", tmp_path / "dist"
    shutil.copytree(ROOT / "qbench", src / "qbench", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    # the build backend itself, as pip or build would call it, so its warnings reach us
    code = f"from setuptools import build_meta; build_meta.build_wheel({str(dist)!r})"
    build = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    log = build.stdout + build.stderr
    assert "running bdist_wheel" in log
    assert "is absent from the `packages` configuration" not in log
    (wheel,) = dist.glob("qbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).name for n in names if n.startswith("qbench/templates/")}
    expected = {p.name for p in (ROOT / "qbench" / "templates").glob("*.j2")}
    assert expected and expected <= shipped
    assert not [n for n in names if n.startswith("tests/")]


def test_importing_torchao_after_qbench_prints_no_notice_meant_for_its_developers():
    """torch logs a deprecation notice about torchao's Enum registration on every import of it;
    qbench filters that one message and nothing else from the logger."""
    script = (
        "import logging, qbench, torchao\n"
        "logging.getLogger('torch.utils._pytree').warning('another message')\n"
    )
    err = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120).stderr
    assert "is an Enum subclass" not in err and "another message" in err
