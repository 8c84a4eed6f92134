"""A recorded workspace (checked-in files, see make_fixtures.py) and reports rendered from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURE_WS = Path(__file__).resolve().parent / "fixtures" / "ws"


@pytest.fixture
def recorded_ws(tmp_path) -> Path:
    """A writable copy of the recorded workspace at tmp/runs/default."""
    dest = tmp_path / "runs" / "default"
    shutil.copytree(FIXTURE_WS, dest)
    return dest


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, dict]:
    """Every format rendered once per module from a copy of the recorded workspace."""
    from qbench.reports.writers import FORMATS, write_reports

    root = tmp_path_factory.mktemp("rendered") / "ws"
    shutil.copytree(FIXTURE_WS, root)
    written = write_reports(root, FORMATS, root / "reports")
    return root, written
