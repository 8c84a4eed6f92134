"""TensorRT engines: built and run for real on a CUDA machine with TensorRT, skipped elsewhere."""

from __future__ import annotations

import importlib.util
import shutil

import pytest
import torch

pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="tensorrt is not installed"),
]


@pytest.mark.parametrize("mode", ["tensorrt-fp16", "tensorrt-int8"])
def test_tensorrt_engine_builds_and_agrees(tiny_baseline_root, tmp_path, test_split, mode):
    from qbench.pipeline.quantize import quantize
    from qbench.records import QuantizeOptions
    from qbench.runners.base import create_runner
    from qbench.workspace import Workspace

    shutil.copytree(tiny_baseline_root, tmp_path / "default")
    ws = Workspace(tmp_path / "default")
    (record,) = quantize(ws, [mode], QuantizeOptions(device="cuda", calib_batches=4))
    assert record.status == "ok" and record.details["profile"]["input"]["max"][0] == 64
    assert record.ops_unit == ("GOP/s" if mode == "tensorrt-int8" else "GFLOP/s")
    assert "tensorrt" in record.tool_versions
    batches, reference = test_split
    runner = create_runner(record, ws.variant_dir(mode), device="cuda")
    with runner:
        logits = torch.cat([runner.to_logits(runner.infer(runner.prepare(x))) for x in batches])
    agreement = (logits.argmax(1) == reference.argmax(1)).float().mean().item()
    assert agreement >= 0.95
