"""``onnx-tensorrt-fp16``: the FP32 ONNX export run by ONNX Runtime's TensorRT execution provider,
which builds FP16 TensorRT engines for the subgraphs TensorRT takes (the CUDA provider runs the
rest). The deployment path of users who stay inside ONNX Runtime, beside qbench's own TensorRT
engines (tensorrt-fp16), which it complements rather than replaces.

The provider builds its engines when a session first runs a shape; the engine cache (kept in the
variant's folder) and the timing cache make later sessions load them instead. The optimization
profile covers the batch sizes the variant was converted for (``--batch-sizes``): min 1, opt and
max the largest, so no sweep size triggers a rebuild inside the timed loop.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from qbench import capabilities
from qbench.artifacts.onnx import CACHE_OPTIONS
from qbench.exporters.base import Converted, ExportContext, register_exporter
from qbench.exporters.onnx_export import (
    FP32_FILE,
    INPUT,
    LIBRARIES,
    TOLERANCES,
    _converted,
    fp32_onnx,
    verify,
)

MODE = "onnx-tensorrt-fp16"
CAPABILITY = "onnxruntime-tensorrt"
ENGINE_CACHE = "trt-engine-cache"  # beside the model, relative to the variant's folder


def _ort_tensorrt() -> str | None:
    missing = capabilities.missing("onnxruntime-cuda")
    if missing:
        return missing
    import onnxruntime as ort

    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        return "ONNX Runtime has no TensorRT provider (pip install onnxruntime-gpu tensorrt)"
    return None


capabilities.register_capability(CAPABILITY, _ort_tensorrt)


def provider_options(variant_dir: Path, input_size: int, batch_sizes: list[int]) -> dict[str, str]:
    """The TensorRT provider's options: FP16 engines, engine and timing caches in ``variant_dir``,
    one optimization profile from batch 1 to the largest of ``batch_sizes``."""
    chw = f"3x{input_size}x{input_size}"
    largest = max(batch_sizes)
    cache = str(Path(variant_dir) / ENGINE_CACHE)
    return {
        "trt_fp16_enable": "True",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": cache,
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": cache,
        "trt_profile_min_shapes": f"{INPUT}:1x{chw}",
        "trt_profile_opt_shapes": f"{INPUT}:{largest}x{chw}",
        "trt_profile_max_shapes": f"{INPUT}:{largest}x{chw}",
    }


@register_exporter(
    MODE,
    requires=("onnx", CAPABILITY),
    runner="onnxruntime",
    devices=("cuda",),
    libraries=(*LIBRARIES, "tensorrt"),
    description="ONNX FP32 model, FP16 engines built by ONNX Runtime's TensorRT execution provider",
)
def export_onnx_tensorrt_fp16(ctx: ExportContext, out_dir: Path) -> Converted:
    with fp32_onnx(ctx) as source:
        shutil.copyfile(source, out_dir / FP32_FILE)
    options = provider_options(out_dir, ctx.input_size, ctx.options.batch_sizes)
    check = verify(
        ctx, out_dir / FP32_FILE, MODE, TOLERANCES["fp16"], provider="tensorrt", provider_options=options
    )
    return _converted(
        FP32_FILE,
        check,
        weights="fp16 (engines built by the provider)",
        activations="fp16 (inputs and outputs fp32)",
        provider="tensorrt",
        provider_options=_relative(options, out_dir),
        max_batch=max(ctx.options.batch_sizes),  # the profile's end: the runner splits larger batches
    )


def _relative(options: dict[str, str], out_dir: Path) -> dict[str, Any]:
    """The options as recorded: cache folders relative to the variant's folder, so it can move
    (qbench.artifacts.onnx.recorded_provider_options makes them absolute again)."""
    return {k: (ENGINE_CACHE if k in CACHE_OPTIONS else v) for k, v in options.items()}
