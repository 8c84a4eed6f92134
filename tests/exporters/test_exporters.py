"""Every exporter on the tiny trained workspace, checked through the real runners."""

from __future__ import annotations

import json

import pytest
import torch

from qbench.records import VariantRecord
from qbench.runners.base import create_runner

INT8_MODES = ("int8-ptq", "int8-dynamic", "qat", "onnx-int8")
CPU_MODES = ["fp32", "int8-ptq", "int8-dynamic", "qat", "onnx", "onnx-fp16", "onnx-int8"]


def predictions(ws, record, batches):
    runner = create_runner(record, ws.variant_dir(record.mode), threads=2)
    with runner:
        return torch.cat([runner.to_logits(runner.infer(runner.prepare(x))) for x in batches]), runner


@pytest.mark.parametrize("mode", CPU_MODES)
def test_variant_written_with_provenance(converted, mode):
    ws, records = converted
    raw = json.loads(ws.variant_json(mode).read_text())
    assert raw["schema_version"] == 2
    record = VariantRecord.from_json(ws.variant_json(mode))
    assert record == records[mode]
    assert record.status == "ok" and record.skip_reason is None
    assert (ws.variant_dir(mode) / record.artifact).is_file()
    assert record.artifact_bytes > 0 and record.conversion_seconds >= 0
    assert record.weights and record.activations and record.engine and record.format and record.created
    assert record.baseline.model == "tiny-cnn" and record.baseline.input_size == 32
    assert record.options.calib_batches == 4 and record.options.qat_epochs == 2


@pytest.mark.parametrize("mode", CPU_MODES)
def test_registration_fills_unit_runner_and_provenance(converted, mode):
    from qbench.exporters.base import EXPORTERS

    _, records = converted
    record, meta = records[mode], EXPORTERS.entry(mode).meta
    assert record.ops_unit == ("GOP/s" if mode in INT8_MODES else "GFLOP/s")
    assert record.runner == meta["runner"] and record.description == meta["description"]
    assert record.requires == list(meta["requires"])
    # provenance holds exactly the declared libraries that are installed
    assert "torch" in record.tool_versions
    assert set(record.tool_versions) <= set(meta["libraries"])
    if record.runner == "onnxruntime":
        assert {"onnx", "onnxruntime"} <= set(record.tool_versions)
    else:
        assert "onnxruntime" not in record.tool_versions


def test_int8_ptq_records_engine_choice_and_calibration(converted):
    _, records = converted
    record = records["int8-ptq"]
    choice = record.details["engine_choice"]
    assert choice == {"engine": "x86", "requested": "x86", "why": "requested with --engine"}
    assert record.details["quantized_engine"] == "x86"
    assert record.calibration.method == "minmax" and record.calibration.observer == "MinMaxObserver"
    assert record.calibration.batches == 4 and record.calibration.images == 128
    assert len(record.calibration.hash) == 16
    assert ["features.0", "features.1"] in record.details["fused"]


def test_int8_models_contain_quantized_operators(converted):
    ws, records = converted
    assert records["int8-ptq"].details["quantized_ops"]["ConvReLU2d"] == 2
    assert records["int8-dynamic"].details["quantized_ops"]["Linear"] == 2
    assert records["onnx-int8"].details["qdq_nodes"]["QuantizeLinear"] > 0
    runner = create_runner(records["int8-ptq"], ws.variant_dir("int8-ptq"))
    with runner:
        kinds = {type(m).__module__ for m in runner.model.modules()}
    assert any(k.startswith("torch.ao.nn.intrinsic.quantized") for k in kinds)


@pytest.mark.parametrize("mode", INT8_MODES)
def test_int8_artifacts_are_much_smaller(converted, mode):
    ws, records = converted
    fp32 = records["onnx" if mode.startswith("onnx") else "fp32"]
    fp32_bytes = (ws.variant_dir(fp32.mode) / fp32.artifact).stat().st_size
    assert records[mode].artifact_bytes < 0.5 * fp32_bytes


@pytest.mark.parametrize(
    ("mode", "min_agreement"),
    [
        ("onnx", 1.0),
        ("onnx-fp16", 0.99),
        ("int8-ptq", 0.95),
        ("int8-dynamic", 0.95),
        ("qat", 0.85),
        ("onnx-int8", 0.95),
    ],
)
# QAT fine-tunes the weights, so it may legitimately move further from FP32 than PTQ does
def test_outputs_agree_with_fp32(converted, test_split, mode, min_agreement):
    ws, records = converted
    batches, reference = test_split
    logits, _ = predictions(ws, records[mode], batches)
    agreement = (logits.argmax(1) == reference.argmax(1)).float().mean().item()
    assert agreement >= min_agreement, f"{mode}: top-1 agreement {agreement:.3f}"


def test_onnx_records_verification_and_calibration(converted):
    _, records = converted
    check = records["onnx"].details["verification"]
    assert check["max_abs_diff"] <= check["atol"]
    assert records["onnx"].details["opset"] == 18 and records["onnx"].details["dynamic_axes"] == {
        "input": [0]
    }
    assert records["onnx-fp16"].details["verification"]["provider"] == "CPUExecutionProvider"
    calib = records["onnx-int8"].calibration
    assert calib.method == "minmax" and calib.observer == "MinMax" and calib.images == 128


def test_qat_history_is_in_percent_with_its_loss(converted):
    ws, records = converted
    qat = records["qat"].qat
    assert [h.epoch for h in qat.history] == [1, 2]
    for epoch in qat.history:
        assert epoch.train_loss > 0
        # percent, not a fraction: the tiny baseline is ~90% accurate, fake-quant keeps it well above 1%
        assert 20 < epoch.train_acc <= 100 and 20 < epoch.val_acc <= 100
    assert 20 < qat.fp32_val_acc <= 100
    assert qat.batches_per_epoch == 6 and qat.observers_frozen_at_step == 6
    written = json.loads(ws.variant_json("qat").read_text())["qat"]["history"][0]
    assert set(written) == {"epoch", "train_loss", "train_acc", "val_acc"}


def test_tensorrt_recorded_as_skipped_with_reason(converted):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the tensorrt-marked test builds the engines for real")
    ws, _ = converted
    for mode in ("tensorrt-fp16", "tensorrt-int8"):
        record = VariantRecord.from_json(ws.variant_json(mode))
        assert record.status == "skipped" and record.skip_reason == "no CUDA device"
        assert record.artifact is None and record.runner == "tensorrt"


def test_onnx_sessions_do_not_spin_and_int8_keeps_full_range_with_vnni(converted):
    """The session settings qbench measures ONNX Runtime with are the ones recorded in variant.json."""
    from qbench import capabilities

    ws, records = converted
    record = records["onnx-int8"]
    assert record.details["session"] == {
        "graph_optimization_level": "ORT_ENABLE_ALL",
        "session.intra_op.allow_spinning": "0",
    }
    assert record.details["reduce_range"] is (not capabilities.cpu_has_vnni())
    runner = create_runner(record, ws.variant_dir("onnx-int8"), threads=2)
    with runner:
        options = runner.session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert options.intra_op_num_threads == 2
