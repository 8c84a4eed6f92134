"""Fixtures of the regress tests: one real tiny-cnn bench (see regress_records for the cases)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from regress_records import transform

from qbench.records import BenchOptions, BenchResult
from qbench.workspace import Workspace

BATCHES = (1, 8)


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch):
    """Keep a CI runner's GITHUB_STEP_SUMMARY out of the tests (the subprocesses inherit os.environ)."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture(scope="session")
def real_ws(tiny_baseline_root, tmp_path_factory) -> Path:
    """A tiny-cnn workspace benched for real (fp32 at batch 1 and 8, with accuracy, 2 repeats)."""
    from qbench.pipeline import bench

    root = tmp_path_factory.mktemp("regress-real") / "default"
    shutil.copytree(tiny_baseline_root, root)
    options = BenchOptions(batch_sizes=list(BATCHES), warmup=2, iters=20, threads=1, isolate=False, repeats=2)
    (result,) = bench(Workspace(root), options)
    assert result.ok and len(result.latency[0].repeats) == 2, result.notes
    return root


@pytest.fixture
def real(real_ws):
    """real(mode=..., ...) -> a fresh copy of the real fp32 record, transformed (see ``transform``)."""

    def make(mode: str = "fp32", **changes) -> BenchResult:
        return transform(BenchResult.from_json(Workspace(real_ws).result_path("fp32")), mode, **changes)

    return make


@pytest.fixture
def regress_cli(tmp_path, monkeypatch, capsys):
    """``qbench regress ARGS`` through the CLI's own main() in this process (the subprocess tests cover
    the console script; this keeps the many cases fast): (exit status, stdout, stderr)."""
    from qbench.cli.main import main

    def run(*args: str):
        monkeypatch.chdir(tmp_path)
        code = main(["regress", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run
