"""TensorRT engines: built and run for real on a CUDA machine with TensorRT, skipped elsewhere.
The parts that need no GPU (profiles, QDQ models, the verification rule) are tested on the CPU
in tests/exporters/test_tensorrt_build.py."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import torch

pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="tensorrt is not installed"),
]

MODES = ["tensorrt-fp16", "tensorrt-int8", "tensorrt-qat"]
BATCH_SIZES = [64, 1, 4]  # unsorted on purpose: the profiles come out sorted


@pytest.fixture(scope="module")
def built(tiny_baseline_root, tmp_path_factory):
    """(workspace, {mode: VariantRecord}): every TensorRT mode built once, profiles at BATCH_SIZES."""
    from qbench.pipeline.quantize import quantize
    from qbench.records import QuantizeOptions
    from qbench.workspace import Workspace

    root = tmp_path_factory.mktemp("trt") / "default"
    shutil.copytree(tiny_baseline_root, root)
    ws = Workspace(root)
    options = QuantizeOptions(
        device="cuda", calib_batches=4, batch_sizes=BATCH_SIZES, qat_epochs=1, qat_max_batches=6, qat_lr=1e-4
    )
    return ws, {r.mode: r for r in quantize(ws, MODES, options)}


def _logits(runner, batches):
    with runner:
        return torch.cat([runner.to_logits(runner.infer(runner.prepare(x))) for x in batches])


@pytest.mark.parametrize("mode", MODES)
def test_tensorrt_engine_builds_and_agrees(built, test_split, mode):
    from qbench.runners.base import create_runner

    ws, records = built
    record = records[mode]
    assert record.status == "ok", record.skip_reason
    assert record.ops_unit == ("GFLOP/s" if mode == "tensorrt-fp16" else "GOP/s")
    assert "tensorrt" in record.tool_versions
    batches, reference = test_split
    full = [x for x in batches if len(x) == 64]  # the engine has profiles for 1, 4 and 64 only
    logits = _logits(create_runner(record, ws.variant_dir(mode), device="cuda"), full)
    agreement = (logits.argmax(1) == reference[: len(logits)].argmax(1)).float().mean().item()
    # the QAT engine encodes a fine-tuned model, which need not agree with the FP32 one as closely
    assert agreement >= (0.85 if mode == "tensorrt-qat" else 0.95)


@pytest.mark.parametrize("mode", MODES)
def test_one_profile_per_batch_size_each_tuned_for_its_size(built, mode):
    details = built[1][mode].details
    assert details["batch_sizes"] == [1, 4, 64] and details["max_batch"] == 64
    assert [(p["index"], p["batch_size"]) for p in details["profiles"]] == [(0, 1), (1, 4), (2, 64)]
    for p in details["profiles"]:
        assert p["min"] == p["opt"] == p["max"] == [p["batch_size"], 3, 32, 32]


def test_a_batch_size_without_a_profile_is_one_sentence_naming_batch_sizes(built, test_split):
    from qbench.errors import QBenchError
    from qbench.runners.base import create_runner

    ws, records = built
    runner = create_runner(records["tensorrt-fp16"], ws.variant_dir("tensorrt-fp16"), device="cuda")
    x = test_split[0][0]
    with runner:
        for batch in (1, 4):  # the profiles built: both run
            assert runner.to_logits(runner.infer(runner.prepare(x[:batch]))).shape == (batch, 10)
        with pytest.raises(QBenchError, match="--batch-sizes") as caught:
            runner.infer(runner.prepare(x[:3]))
    assert "batch size 3" in str(caught.value) and str(caught.value).count("\n") == 0


@pytest.mark.parametrize("mode", ["tensorrt-int8", "tensorrt-qat"])
def test_the_qdq_onnx_is_kept_and_checked(built, mode):
    from qbench.exporters.tensorrt_export import check_tensorrt_qdq

    ws, records = built
    details = records[mode].details
    path = ws.variant_dir(mode) / details["qdq_onnx"]
    assert path.is_file() and path.suffix == ".onnx"
    assert check_tensorrt_qdq(path) == details["qdq_check"]
    assert (
        details["qdq_check"]["int32_dequantize"] == 0 and details["qdq_check"]["quantized_ops"]["Conv"] == 2
    )
    assert not list(ws.variant_dir(mode).glob(".qbench-trt-*"))  # the staging folder is gone


@pytest.mark.parametrize("mode", MODES)
def test_verification_facts_are_recorded_per_profile(built, mode):
    verification = built[1][mode].details["verification"]
    assert [p["batch_size"] for p in verification["profiles"]] == [1, 4, 64]
    assert verification["images"] > 64 and verification["top1_agree"] >= 0.9
    if mode == "tensorrt-fp16":
        assert all(
            p[k]["max_abs_diff"] <= p[k]["atol"] for p in verification["profiles"] for k in ("random", "real")
        )
    else:
        assert "top-1 agreement >= 0.9" in verification["rule"]
    expected = "the QAT model" if mode == "tensorrt-qat" else "the FP32 model"
    assert verification["reference"].startswith(expected)


def test_tensorrt_qat_records_its_fine_tuning(built):
    record = built[1]["tensorrt-qat"]
    assert record.qat is not None and record.qat.epochs == 1 and record.qat.batches_per_epoch == 6
    assert record.calibration is None and record.activations.startswith("int8 (symmetric")


def test_the_timing_cache_is_saved_and_reused(built):
    from qbench.pipeline.quantize import quantize
    from qbench.records import QuantizeOptions

    ws, records = built
    first = records["tensorrt-fp16"].details["timing_cache"]
    path = Path(first["path"])
    assert first["saved"] and path.is_file()
    assert path.parent == Path(os.environ["QBENCH_CACHE_DIR"]) / "tensorrt"
    (again,) = quantize(ws, ["tensorrt-fp16"], QuantizeOptions(device="cuda", batch_sizes=BATCH_SIZES))
    assert again.details["timing_cache"] == {"path": str(path), "hit": True, "saved": True}
