"""Every exporter on the tiny trained workspace, checked through the real runners."""

from __future__ import annotations

import json

import pytest
import torch

from qbench.runners.base import create_runner

INT8_MODES = ("int8-ptq", "int8-dynamic", "qat", "onnx-int8")


def predictions(ws, record, batches):
    runner = create_runner(record, ws.variant_dir(record["mode"]), threads=2)
    with runner:
        return torch.cat([runner.to_logits(runner.infer(runner.prepare(x))) for x in batches]), runner


@pytest.mark.parametrize(
    "mode", ["fp32", "int8-ptq", "int8-dynamic", "qat", "onnx", "onnx-fp16", "onnx-int8"]
)
def test_variant_written_with_provenance(converted, mode):
    ws, records = converted
    record = json.loads(ws.variant_json(mode).read_text())
    assert record.pop("schema_version") == 1
    assert record == json.loads(json.dumps(records[mode]))
    assert record["status"] == "ok"
    assert (ws.variant_dir(mode) / record["artifact"]).is_file()
    assert record["artifact_bytes"] > 0 and record["conversion_seconds"] >= 0
    assert {"weights", "activations", "engine", "format", "tool_versions"} <= set(record)


def test_int8_ptq_records_engine_choice_and_calibration(converted):
    _, records = converted
    record = records["int8-ptq"]
    assert record["engine_choice"]["engine"] == "x86"
    assert record["engine_choice"]["requested"] == "auto" and record["engine_choice"]["why"]
    assert record["quantized_engine"] == "x86"
    assert record["calibration"]["batches"] == 4 and record["calibration"]["images"] == 128
    assert len(record["calibration"]["hash"]) == 16
    assert ["features.0", "features.1"] in record["fused"]


def test_int8_models_contain_quantized_operators(converted):
    ws, records = converted
    assert records["int8-ptq"]["quantized_ops"]["ConvReLU2d"] == 2
    assert records["int8-dynamic"]["quantized_ops"]["Linear"] == 2
    assert records["onnx-int8"]["qdq_nodes"]["QuantizeLinear"] > 0
    runner = create_runner(records["int8-ptq"], ws.variant_dir("int8-ptq"))
    with runner:
        kinds = {type(m).__module__ for m in runner.model.modules()}
    assert any(k.startswith("torch.ao.nn.intrinsic.quantized") for k in kinds)


@pytest.mark.parametrize("mode", INT8_MODES)
def test_int8_artifacts_are_much_smaller(converted, mode):
    ws, records = converted
    fp32 = records["onnx" if mode.startswith("onnx") else "fp32"]
    fp32_bytes = (ws.variant_dir(fp32["mode"]) / fp32["artifact"]).stat().st_size
    assert records[mode]["artifact_bytes"] < 0.5 * fp32_bytes


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
    assert records["onnx"]["verification"]["max_abs_diff"] <= records["onnx"]["verification"]["atol"]
    assert records["onnx"]["opset"] == 18 and records["onnx"]["dynamic_axes"] == {"input": [0]}
    assert records["onnx-fp16"]["verification"]["provider"] == "CPUExecutionProvider"
    calib = records["onnx-int8"]["calibration"]
    assert calib["ort_method"] == "MinMax" and calib["images"] == 128


def test_qat_history(converted):
    _, records = converted
    qat = records["qat"]["qat"]
    assert [h["epoch"] for h in qat["history"]] == [1, 2]
    assert all({"loss", "train_acc", "val_acc"} <= set(h) for h in qat["history"])
    assert qat["batches_per_epoch"] == 6 and qat["observers_frozen_at_step"] == 6


def test_tensorrt_recorded_as_skipped_with_reason(converted):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the tensorrt-marked test builds the engines for real")
    _, records = converted
    for mode in ("tensorrt-fp16", "tensorrt-int8"):
        assert records[mode]["status"] == "skipped"
        assert records[mode]["skip_reason"] == "no CUDA device"
