"""ONNX variants run with ONNX Runtime: FP32, FP16 (FP32 I/O) and INT8 QDQ.

Every artifact is accepted only after a real InferenceSession ran it and its outputs were
compared with PyTorch's. onnx-fp16 and onnx-int8 start from the FP32 export of the onnx
variant (exported here, in a temporary folder, when variants/onnx is missing or stale).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qbench import capabilities
from qbench.artifacts import onnx as onnx_format
from qbench.errors import QBenchError
from qbench.exporters.base import Converted, ExportContext, register_exporter
from qbench.records import CalibrationInfo, VariantRecord
from qbench.records.io import atomic_path

OPSET = 18
INPUT, OUTPUT = "input", "logits"
FP32_FILE = "model.onnx"
# outputs must match PyTorch within these before an artifact is accepted; INT8 is checked by
# top-1 agreement instead, since quantization error is expected to exceed any fixed tolerance
TOLERANCES = {"fp32": (1e-4, 1e-3), "fp16": (5e-2, 5e-2)}
ORT_CALIB = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile", "histogram": "Percentile"}
LIBRARIES = ("torch", "onnx", "onnxscript", "onnxruntime", "onnxruntime-gpu")


def _quiet_export():
    import logging
    import warnings

    stack = contextlib.ExitStack()
    # the dynamo exporter prints its progress to stdout, which carries qbench's own summary lines
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    for name in ("torch.onnx", "onnxscript", "torch.export"):
        log = logging.getLogger(name)
        stack.callback(log.setLevel, log.level)
        log.setLevel(logging.ERROR)
    return stack


def export_fp32_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> dict[str, Any]:
    """torch.onnx.export (dynamo) with a dynamic batch axis, weights inside the one file."""
    return export_module_onnx(copy.deepcopy(model).eval(), example, path)


def export_module_onnx(module: Any, example: torch.Tensor, path: Path) -> dict[str, Any]:
    """``module`` (an nn.Module or a PT2E graph, used as it is) through the dynamo exporter, with
    the dynamic batch axis every ONNX variant has; a converted PT2E graph's
    quantize/dequantize ops come out as QuantizeLinear/DequantizeLinear (onnxscript's torchlib)."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    with _quiet_export():
        program = torch.onnx.export(
            module,
            (example,),
            input_names=[INPUT],
            output_names=[OUTPUT],
            opset_version=OPSET,
            dynamo=True,
            dynamic_shapes=({0: batch},),
            external_data=False,
            optimize=True,
        )
        onnx_format.save(path, program)
    return {"exporter": "torch.onnx.export (dynamo=True)", "opset": OPSET, "dynamic_axes": {INPUT: [0]}}


def _fp32_is_current(ctx: ExportContext, path: Path) -> bool:
    record = ctx.workspace.variant_json("onnx")
    if not path.is_file() or not record.is_file():
        return False
    try:
        ok = VariantRecord.from_json(record).ok
    except QBenchError:  # unreadable or of another schema: export afresh
        return False
    return ok and path.stat().st_mtime >= ctx.workspace.model_path.stat().st_mtime


@contextlib.contextmanager
def fp32_onnx(ctx: ExportContext) -> Iterator[Path]:
    """The FP32 ONNX model of the onnx variant, or a fresh in-process export of it."""
    existing = ctx.workspace.variant_dir("onnx") / FP32_FILE
    if _fp32_is_current(ctx, existing):
        yield existing
        return
    with tempfile.TemporaryDirectory(prefix="qbench-onnx-") as tmp:
        path = Path(tmp) / FP32_FILE
        export_fp32_onnx(ctx.model, ctx.example_input(2), path)
        yield path


def verify(
    ctx: ExportContext,
    path: Path,
    mode: str,
    tolerance: tuple[float, float] | None,
    provider: str | None = None,
    provider_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``path`` in a real InferenceSession (on ``provider``, default: the device's) on a batch
    of 2 and compare with PyTorch."""
    session = onnx_format.open_session(
        path, mode, device=ctx.options.device, provider=provider, provider_options=provider_options
    )
    x = ctx.example_input(2)
    with torch.inference_mode():
        expected = ctx.model(x).float().numpy()
    input_type = np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32
    got = np.asarray(session.run(None, {session.get_inputs()[0].name: x.numpy().astype(input_type)})[0])
    if got.shape != expected.shape or not np.isfinite(got).all():
        raise RuntimeError(f"{mode}: ONNX Runtime returned shape {got.shape} or non-finite values")
    diff = np.abs(got.astype(np.float32) - expected)
    record = {
        "provider": session.get_providers()[0],
        "batch": 2,
        "max_abs_diff": float(diff.max()),
        "top1_agree": float((got.argmax(1) == expected.argmax(1)).mean()),
    }
    if tolerance is not None:
        atol, rtol = tolerance
        scale = max(1.0, float(np.abs(expected).max())) if mode != "onnx" else 1.0
        record.update(atol=atol * scale, rtol=rtol)
        if not np.allclose(got, expected, atol=atol * scale, rtol=rtol):
            raise RuntimeError(
                f"{mode}: ONNX Runtime disagrees with PyTorch (max |diff| {diff.max():.3g} > atol "
                f"{atol * scale:.3g}); the export is wrong, not accepted"
            )
    return record


def _converted(artifact: str, check: dict[str, Any], **fields: Any) -> Converted:
    """The fields every ONNX variant shares; ``fields`` adds Converted fields and details."""
    own = {k: fields.pop(k) for k in ("weights", "activations", "granularity", "calibration") if k in fields}
    return Converted(
        artifact=artifact,
        format=onnx_format.FORMAT.name,
        dtype="float32",
        engine=f"ONNX Runtime ({check['provider']})",
        **own,
        details={
            "opset": OPSET,
            **fields,
            "verification": check,
            "session": {
                "graph_optimization_level": onnx_format.GRAPH_OPTIMIZATION,
                **onnx_format.SESSION_CONFIG,
            },
        },
    )


@register_exporter(
    "onnx",
    requires=("onnx", "onnxruntime"),
    runner="onnxruntime",
    libraries=LIBRARIES,
    description="ONNX FP32, ONNX Runtime",
)
def export_onnx(ctx: ExportContext, out_dir: Path) -> Converted:
    facts = export_fp32_onnx(ctx.model, ctx.example_input(2), out_dir / FP32_FILE)
    check = verify(ctx, out_dir / FP32_FILE, "onnx", TOLERANCES["fp32"])
    return _converted(FP32_FILE, check, weights="fp32", activations="fp32", **facts)


@register_exporter(
    "onnx-fp16",
    requires=("onnx", "onnxruntime"),
    runner="onnxruntime",
    libraries=LIBRARIES,
    description="ONNX FP16 weights and activations, FP32 inputs/outputs kept",
)
def export_onnx_fp16(ctx: ExportContext, out_dir: Path) -> Converted:
    import onnx

    artifact = "model-fp16.onnx"
    with fp32_onnx(ctx) as source:
        model = onnx.load(str(source))
    converted, converter = to_float16(model)
    onnx_format.save(out_dir / artifact, converted)
    check = verify(ctx, out_dir / artifact, "onnx-fp16", TOLERANCES["fp16"])
    return _converted(
        artifact,
        check,
        weights="fp16",
        activations="fp16 (inputs and outputs fp32, cast at the graph edges)",
        converter=converter,
    )


def to_float16(model):
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    return converted, "onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)"


class _Batches:
    """onnxruntime.quantization.CalibrationDataReader over the calibration batches."""

    def __init__(self, batches: list[torch.Tensor]):
        self._iter = iter([{INPUT: b.numpy().astype(np.float32)} for b in batches])

    def get_next(self):
        return next(self._iter, None)


def reduce_range_for(device: str) -> bool:
    """7-bit weights only for a CPU without VNNI/AMX (u8 x s8 pairs would saturate its 16-bit
    intermediate sums); on a GPU and on CPUs with VNNI the full range is exact and kept."""
    return not device.startswith("cuda") and not capabilities.cpu_has_vnni()


def quantize_qdq(
    ctx: ExportContext,
    source: Path,
    dest: Path,
    *,
    symmetric_activations: bool,
    quantize_bias: bool,
    reduce_range: bool,
) -> CalibrationInfo:
    """quant_pre_process + quantize_static: QDQ, per-channel symmetric S8S8 weights, the chosen
    calibration method. onnx-int8 and the TensorRT variants share it and differ in the options:

    - symmetric_activations: int8 activations with zero point 0 (TensorRT accepts no other),
      else asymmetric (ONNX Runtime's default, a little more range for ReLU outputs);
    - quantize_bias: int32 bias behind a DequantizeLinear (ONNX Runtime's default, fused into its
      int8 kernels); TensorRT's parser refuses an int32 DequantizeLinear, so it keeps float biases;
    - reduce_range: 7-bit weights (see reduce_range_for).

    QDQ S8S8 rather than QOperator or U8 activations: ONNX Runtime fuses the QDQ pairs into the same
    x86 int8 kernels either way (measured on the dev VM, AlexNet 224 batch 1, 2 threads: QDQ S8S8,
    QDQ U8S8 and QOperator U8S8 within noise of each other), and QDQ is what TensorRT builds from."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    method = ctx.options.calib_method
    if method not in ORT_CALIB:
        raise QBenchError(f"unknown --calib-method {method!r}; pass one of: {', '.join(ORT_CALIB)}.")
    batches, calib = ctx.calibration_batches()
    reader = type("CalibrationReader", (_Batches, CalibrationDataReader), {})(batches)
    with tempfile.TemporaryDirectory(prefix="qbench-qdq-") as tmp:
        pre = Path(tmp) / "preprocessed.onnx"
        quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
        with atomic_path(dest) as out:
            quantize_static(
                str(pre),
                str(out),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=reduce_range,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=getattr(CalibrationMethod, ORT_CALIB[method]),
                extra_options={
                    "ActivationSymmetric": symmetric_activations,
                    "WeightSymmetric": True,
                    "QuantizeBias": quantize_bias,
                },
            )
        shutil.rmtree(tmp, ignore_errors=True)
    note = "histogram maps to ORT's Percentile (99.999th)" if method == "histogram" else None
    return dataclasses.replace(calib, observer=ORT_CALIB[method], note=note)


def count_qdq(path: Path) -> dict[str, int]:
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    if not counts.get("QuantizeLinear") or not counts.get("DequantizeLinear"):
        raise RuntimeError(f"{path}: quantize_static produced no QuantizeLinear/DequantizeLinear nodes")
    return counts


@register_exporter(
    "onnx-int8",
    requires=("onnx", "onnxruntime"),
    runner="onnxruntime",
    ops_unit="GOP/s",
    libraries=LIBRARIES,
    description="ONNX INT8 QDQ (per-channel S8S8, calibrated), ONNX Runtime",
)
def export_onnx_int8(ctx: ExportContext, out_dir: Path) -> Converted:
    artifact = "model-int8.onnx"
    with fp32_onnx(ctx) as source:
        calibration = quantize_qdq(
            ctx,
            source,
            out_dir / artifact,
            symmetric_activations=False,
            quantize_bias=True,
            reduce_range=reduce_range_for(ctx.options.device),
        )
    check = verify(ctx, out_dir / artifact, "onnx-int8", None)
    return _converted(
        artifact,
        check,
        weights="int8",
        activations="int8",
        granularity="per-channel weights (symmetric), per-tensor activations (asymmetric)",
        calibration=calibration,
        quantizer="onnxruntime.quantization.quantize_static after quant_pre_process",
        quant_format="QDQ",
        reduce_range=reduce_range_for(ctx.options.device),
        qdq_nodes=count_qdq(out_dir / artifact),
    )
