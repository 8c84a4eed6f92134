"""Dynamic INT8 on Linear layers: int8 weights, activations quantized per batch at run time.

torch.ao.quantization.quantize_dynamic (feature-detected like the eager x86 engine) keeps
convolutions in FP32, so the gain is in the Linear-heavy classifier (most of AlexNet's bytes).
"""

from __future__ import annotations

from pathlib import Path

import torch

from qbench.artifacts import ao_dynamic
from qbench.exporters.base import Converted, ExportContext, register_exporter
from qbench.exporters.int8_ptq import check_quantized, eager_quantized_ops


@register_exporter(
    "int8-dynamic",
    requires=("ao-eager",),
    ops_unit="GOP/s",
    devices=("cpu",),  # torch.ao's dynamic quantized Linear has CPU kernels only
    libraries=("torch",),
    description="dynamic INT8 on Linear layers (weights int8, activations quantized per batch)",
)
def export_int8_dynamic(ctx: ExportContext, out_dir: Path) -> Converted:
    converted = ao_dynamic.quantize_linear_dynamic(ctx.model)
    ops = eager_quantized_ops(converted)
    check_quantized(ops, "int8-dynamic")
    with torch.inference_mode():
        converted(ctx.example_input(2))
    artifact = "model-int8-dynamic.pt"
    ao_dynamic.FORMAT.save(out_dir / artifact, converted)
    return Converted(
        artifact=artifact,
        format=ao_dynamic.FORMAT.name,
        dtype="float32",
        engine="torch.ao.quantization.quantize_dynamic, x86 quantized engine",
        weights="int8 (Linear only; convolutions stay fp32)",
        activations="fp32, quantized to uint8 per batch inside each Linear",
        granularity="per-tensor weights",
        details={"quantized_engine": "x86", "quantized_ops": ops},
    )
