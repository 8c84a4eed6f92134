"""Report fixtures from a real pipeline run: `qbench baseline/quantize/bench` on tiny-cnn.

The session runs the real CLI in subprocesses once (a few seconds of training on the embedded
digits data, 32x32, every CPU mode, a 2-point batch sweep), so the reports are built from the
records today's writers produce: a schema drift between writers and readers fails here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# every mode that runs on a CPU-only machine; fp16 runs on the CPU too (or is recorded as skipped)
MODES = ["fp32", "int8-ptq", "onnx", "onnx-int8", "qat", "fp16"]
BATCH_SIZES = [1, 4]


def _qbench_command() -> list[str]:
    script = Path(sys.executable).parent / "qbench"  # the console script of this environment
    return [str(script)] if script.is_file() else [sys.executable, "-m", "qbench.cli.main"]


def run_qbench(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([*_qbench_command(), *args], cwd=cwd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"qbench {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session")
def real_run(tmp_path_factory) -> Path:
    """A workspace written by the real pipeline (read-only: copy it before changing anything)."""
    top = tmp_path_factory.mktemp("real-run")
    ws = ["--runs-dir", str(top / "runs"), "--exp", "tiny"]
    run_qbench(
        top, "baseline", "--train", "--model", "tiny-cnn", "--image-size", "32",
        "--epochs", "2", "--max-batches", "20", "--batch-size", "32", *ws,
    )  # fmt: skip
    run_qbench(
        top, "quantize", "--mode", ",".join(MODES), "--calib-batches", "2", "--calib-batch-size", "16",
        "--qat-epochs", "1", "--qat-max-batches", "3", *ws,
    )  # fmt: skip
    run_qbench(
        top, "bench", "--batch-sizes", ",".join(map(str, BATCH_SIZES)), "--iters", "10", "--warmup", "2", *ws
    )
    return top / "runs" / "tiny"


@pytest.fixture
def real_ws(real_run, tmp_path) -> Path:
    """A writable copy of the real run's workspace at tmp/runs/default."""
    dest = tmp_path / "runs" / "default"
    shutil.copytree(real_run, dest)
    return dest


@pytest.fixture(scope="session")
def rendered(real_run, tmp_path_factory) -> tuple[Path, dict]:
    """Every format rendered once from a copy of the real run."""
    from qbench.reports.writers import FORMATS, write_reports

    root = tmp_path_factory.mktemp("rendered") / "ws"
    shutil.copytree(real_run, root)
    written = write_reports(root, FORMATS, root / "reports")
    return root, written
