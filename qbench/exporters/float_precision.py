"""FP32 (the baseline itself), FP16 and BF16 PyTorch variants."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from qbench.exporters.base import ExportContext, register_exporter


def _relative_baseline(ctx: ExportContext) -> str:
    return str(Path("..", "..", "baseline", ctx.workspace.model_path.name))


@register_exporter("fp32", description="the FP32 baseline, eager PyTorch (the reference)")
def export_fp32(ctx: ExportContext, out_dir: Path) -> dict[str, Any]:
    # the baseline checkpoint is the artifact: no copy of a 200 MB file
    return {
        "artifact": _relative_baseline(ctx),
        "format": "checkpoint",
        "dtype": "float32",
        "engine": "PyTorch eager",
        "weights": "fp32",
        "activations": "fp32",
    }


def _cast_checkpoint(ctx: ExportContext, out_dir: Path, dtype: torch.dtype, name: str) -> str:
    from qbench.baselines.checkpoint import save_checkpoint

    meta = {k: v for k, v in ctx.meta.items() if k not in ("format", "schema_version")}
    artifact = f"model-{name}.pt"
    model = copy.deepcopy(ctx.model).to(dtype)
    save_checkpoint(out_dir / artifact, model, meta)
    return artifact


@register_exporter("fp16", description="model.half(): FP16 weights and activations")
def export_fp16(ctx: ExportContext, out_dir: Path) -> dict[str, Any]:
    note = None
    if ctx.options.device == "cpu":
        note = "FP16 on the CPU runs through generic kernels unless oneDNN uses AVX512-FP16/AMX-FP16"
    return {
        "artifact": _cast_checkpoint(ctx, out_dir, torch.float16, "fp16"),
        "format": "checkpoint",
        "dtype": "float16",
        "engine": "PyTorch eager",
        "weights": "fp16",
        "activations": "fp16",
        "note": note,
    }


@register_exporter("bf16", description="model.to(bfloat16): BF16 weights and activations (AMX/AVX512-BF16)")
def export_bf16(ctx: ExportContext, out_dir: Path) -> dict[str, Any]:
    return {
        "artifact": _cast_checkpoint(ctx, out_dir, torch.bfloat16, "bf16"),
        "format": "checkpoint",
        "dtype": "bfloat16",
        "engine": "PyTorch eager (oneDNN)",
        "weights": "bf16",
        "activations": "bf16",
    }
