"""Truncated artifacts, unknown modes and empty calibration sets: one sentence, exit status 2."""

from __future__ import annotations

import shutil

import pytest

from qbench.errors import QBenchError
from qbench.runners.base import create_runner


@pytest.mark.parametrize("mode", ["int8-ptq", "int8-dynamic", "onnx", "onnx-int8"])
def test_truncated_artifact_names_the_fix(converted, tmp_path, mode):
    ws, records = converted
    record = records[mode]
    copy_dir = tmp_path / mode
    shutil.copytree(ws.variant_dir(mode), copy_dir)
    artifact = copy_dir / record.artifact
    artifact.write_bytes(artifact.read_bytes()[: artifact.stat().st_size // 2])
    with pytest.raises(QBenchError, match=rf"rerun 'qbench quantize --mode {mode}'"):
        create_runner(record, copy_dir).load()


def test_missing_artifact_names_the_fix(converted, tmp_path):
    _, records = converted
    with pytest.raises(QBenchError, match="does not exist; rerun 'qbench quantize --mode onnx'"):
        create_runner(records["onnx"], tmp_path).load()


def test_unknown_mode_exits_2_with_one_line(tiny_workspace, qbench_cli):
    runs = tiny_workspace.root.parent
    proc = qbench_cli("quantize", "--mode", "int9-ptq", "--runs-dir", str(runs))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "unknown mode 'int9-ptq'" in lines[0] and "--mode" in lines[0] and "int8-ptq" in lines[0]
    assert not tiny_workspace.variants_dir.exists()


def test_empty_calibration_set_exits_2_with_one_line(tiny_workspace, qbench_cli):
    runs = tiny_workspace.root.parent
    proc = qbench_cli("quantize", "--mode", "int8-ptq", "--calib-batches", "0", "--runs-dir", str(runs))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "calibration set is empty" in lines[0] and "--calib-batches 1" in lines[0]


def test_quantize_cli_converts_and_reports(tiny_workspace, qbench_cli):
    runs = tiny_workspace.root.parent
    proc = qbench_cli("quantize", "--mode", "int8-dynamic,tensorrt-int8", "--runs-dir", str(runs))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("int8-dynamic: converted in ") and "MiB" in lines[0]
    assert lines[1].startswith("tensorrt-int8: skipped: ") or lines[1].startswith("tensorrt-int8: converted")
    assert tiny_workspace.variant_json("int8-dynamic").is_file()


def test_unknown_engine_is_a_user_error():
    from qbench.exporters.int8_ptq import resolve_engine
    from qbench.records import QuantizeOptions

    with pytest.raises(QBenchError, match="unknown --engine 'arm'"):
        QuantizeOptions(engine="arm")
    with pytest.raises(QBenchError, match="unknown --engine 'arm'"):
        resolve_engine("arm")
