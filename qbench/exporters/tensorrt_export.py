"""TensorRT engines built from the ONNX variants (needs CUDA and TensorRT 10+).

FP16 is built from the FP16 ONNX and INT8 from an explicit QDQ ONNX (symmetric activations,
which TensorRT requires), both as strongly typed networks: the precision comes from the
graph, not from builder flags or implicit calibrators (deprecated in 10, removed in 11).
One optimization profile covers the dynamic batch axis from 1 to the largest swept batch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from qbench.artifacts import tensorrt_plan
from qbench.exporters.base import Converted, ExportContext, register_exporter
from qbench.exporters.onnx_export import INPUT, fp32_onnx, quantize_qdq, to_float16

MAX_BATCH = 64  # the largest batch of the default sweep; the profile's opt and max
WORKSPACE_BYTES = 1 << 30
LIBRARIES = ("torch", "onnx", "onnxruntime", "tensorrt")


def build_engine(onnx_path: Path, plan_path: Path, input_size: int) -> dict[str, Any]:
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strongly_typed is not None:  # TensorRT 11 is always strongly typed and ignores the flag
        flags |= 1 << int(strongly_typed)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT's ONNX parser rejected {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    profile = builder.create_optimization_profile()
    chw = (3, input_size, input_size)
    shapes = {"min": (1, *chw), "opt": (MAX_BATCH, *chw), "max": (MAX_BATCH, *chw)}
    profile.set_shape(INPUT, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT could not build an engine from {onnx_path.name}; see its log above")
    tensorrt_plan.FORMAT.save(plan_path, serialized)
    return {
        "tensorrt": trt.__version__,
        "strongly_typed": True,
        "profile": {INPUT: {k: list(v) for k, v in shapes.items()}},
        "workspace_bytes": WORKSPACE_BYTES,
    }


def _converted(artifact: str, facts: dict[str, Any], **fields: Any) -> Converted:
    return Converted(
        artifact=artifact,
        format=tensorrt_plan.FORMAT.name,
        dtype="float32",
        engine=f"TensorRT {facts['tensorrt']} (strongly typed)",
        **fields,
        details={"max_batch": MAX_BATCH, **facts},
    )


@register_exporter(
    "tensorrt-fp16",
    requires=("cuda", "tensorrt"),
    runner="tensorrt",
    libraries=LIBRARIES,
    description="TensorRT engine from the FP16 ONNX (FP32 I/O)",
)
def export_tensorrt_fp16(ctx: ExportContext, out_dir: Path) -> Converted:
    import onnx

    artifact = "model-fp16.plan"
    with fp32_onnx(ctx) as source, tempfile.TemporaryDirectory(prefix="qbench-trt-") as tmp:
        fp16_path = Path(tmp) / "model-fp16.onnx"
        onnx.save_model(to_float16(onnx.load(str(source)))[0], str(fp16_path))
        facts = build_engine(fp16_path, out_dir / artifact, ctx.input_size)
    return _converted(artifact, facts, weights="fp16", activations="fp16")


@register_exporter(
    "tensorrt-int8",
    requires=("cuda", "tensorrt"),
    runner="tensorrt",
    ops_unit="GOP/s",
    libraries=LIBRARIES,
    description="TensorRT engine from an explicit INT8 QDQ ONNX (no implicit calibrator)",
)
def export_tensorrt_int8(ctx: ExportContext, out_dir: Path) -> Converted:
    artifact = "model-int8.plan"
    with fp32_onnx(ctx) as source, tempfile.TemporaryDirectory(prefix="qbench-trt-") as tmp:
        qdq_path = Path(tmp) / "model-int8-qdq.onnx"
        calibration = quantize_qdq(ctx, source, qdq_path, symmetric_activations=True)
        facts = build_engine(qdq_path, out_dir / artifact, ctx.input_size)
    return _converted(
        artifact,
        facts,
        weights="int8",
        activations="int8 (symmetric, explicit QDQ)",
        granularity="per-channel weights, per-tensor activations",
        calibration=calibration,
    )
