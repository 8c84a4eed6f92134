"""Dynamic INT8 on Linear layers: int8 weights, activations quantized per batch at run time.

torch.ao.quantization.quantize_dynamic (feature-detected like the eager x86 engine) keeps
convolutions in FP32, so the gain is in the Linear-heavy classifier (most of AlexNet's bytes).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qbench.exporters.base import ExportContext, register_exporter
from qbench.exporters.int8_ptq import (
    check_quantized,
    eager_quantized_ops,
    load_state_into,
    quiet,
    read_state_artifact,
)
from qbench.runners.torch_runner import register_torch_loader


def quantize_linear_dynamic(model: nn.Module) -> nn.Module:
    from torch.ao.quantization import quantize_dynamic

    torch.backends.quantized.engine = "x86"
    with quiet():
        return quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)


@register_exporter(
    "int8-dynamic",
    requires=("ao-eager",),
    description="dynamic INT8 on Linear layers (weights int8, activations quantized per batch)",
)
def export_int8_dynamic(ctx: ExportContext, out_dir: Path) -> dict[str, Any]:
    from qbench.workspace import atomic_path

    converted = quantize_linear_dynamic(ctx.model)
    ops = eager_quantized_ops(converted)
    check_quantized(ops, "int8-dynamic")
    with torch.inference_mode():
        converted(ctx.example_input(2))
    artifact = "model-int8-dynamic.pt"
    with atomic_path(out_dir / artifact) as tmp:
        torch.save(converted.state_dict(), tmp)
    return {
        "artifact": artifact,
        "format": "ao-dynamic-int8",
        "dtype": "float32",
        "engine": "torch.ao.quantization.quantize_dynamic, x86 quantized engine",
        "quantized_engine": "x86",
        "quantized_ops": ops,
        "weights": "int8 (Linear only; convolutions stay fp32)",
        "activations": "fp32, quantized to uint8 per batch inside each Linear",
        "granularity": "per-tensor weights",
        "calibration": None,
    }


@register_torch_loader("ao-dynamic-int8")
def load_ao_dynamic(path: Path, variant: dict[str, Any]) -> nn.Module:
    from qbench.baselines.models import create_model

    mode = variant.get("mode", "int8-dynamic")
    state = read_state_artifact(path, mode)
    base = variant["baseline"]
    model = quantize_linear_dynamic(create_model(base["model"], num_classes=base["num_classes"]))
    return load_state_into(model, state, path, mode)
