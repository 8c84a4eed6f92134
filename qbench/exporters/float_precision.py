"""FP32 (the baseline itself), FP16 and BF16 PyTorch variants."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from qbench.artifacts import checkpoint
from qbench.exporters.base import Converted, ExportContext, register_exporter

LIBRARIES = ("torch",)


@register_exporter(
    "fp32", libraries=LIBRARIES, description="the FP32 baseline, eager PyTorch (the reference)"
)
def export_fp32(ctx: ExportContext, out_dir: Path) -> Converted:
    # the baseline checkpoint is the artifact: no copy of a 200 MB file
    return Converted(
        artifact=str(Path("..", "..", "baseline", ctx.workspace.model_path.name)),
        format=checkpoint.FORMAT.name,
        dtype="float32",
        engine="PyTorch eager",
        weights="fp32",
        activations="fp32",
    )


def _cast_checkpoint(ctx: ExportContext, out_dir: Path, dtype: torch.dtype, name: str) -> str:
    artifact = f"model-{name}.pt"
    checkpoint.save(out_dir / artifact, copy.deepcopy(ctx.model).to(dtype), ctx.meta)
    return artifact


@register_exporter("fp16", libraries=LIBRARIES, description="model.half(): FP16 weights and activations")
def export_fp16(ctx: ExportContext, out_dir: Path) -> Converted:
    note = None
    if ctx.options.device == "cpu":
        note = "FP16 on the CPU runs through generic kernels unless oneDNN uses AVX512-FP16/AMX-FP16"
    return Converted(
        artifact=_cast_checkpoint(ctx, out_dir, torch.float16, "fp16"),
        format=checkpoint.FORMAT.name,
        dtype="float16",
        engine="PyTorch eager",
        weights="fp16",
        activations="fp16",
        note=note,
    )


@register_exporter(
    "bf16",
    libraries=LIBRARIES,
    description="model.to(bfloat16): BF16 weights and activations (AMX/AVX512-BF16)",
)
def export_bf16(ctx: ExportContext, out_dir: Path) -> Converted:
    return Converted(
        artifact=_cast_checkpoint(ctx, out_dir, torch.bfloat16, "bf16"),
        format=checkpoint.FORMAT.name,
        dtype="bfloat16",
        engine="PyTorch eager (oneDNN)",
        weights="bf16",
        activations="bf16",
    )
