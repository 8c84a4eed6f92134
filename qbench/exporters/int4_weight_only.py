"""INT4 weight-only quantization of the Linear layers with torchao (where it has CPU kernels).

torchao's ``Int4WeightOnlyConfig`` packs INT4 weights for its tinygemm kernels; which packing
formats run on a CPU depends on the installed torchao (0.18 has none: its formats need CUDA or
the mslk package). The exporter probes each packing format on a small Linear and falls back to
``IntxWeightOnlyConfig(weight_dtype=torch.int4)``, torchao's portable path: INT4 values in INT8
storage, dequantized inside each Linear on every call. Convolutions stay FP32; so do activations.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from qbench import capabilities
from qbench.artifacts import state_dict
from qbench.errors import QBenchError
from qbench.exporters.base import Converted, ExportContext, register_exporter

MODE = "int4-weight-only"
CAPABILITY = "torchao-int4-weight-only"
GROUP_SIZE = 32  # weights per scale along the input dimension (torchao's smallest common choice)


@dataclass(frozen=True)
class Int4Recipe:
    """A torchao config that quantized a probe Linear on this machine, and how to describe it."""

    config: Any
    engine: str
    storage: str
    granularity: str
    note: str | None


def _linear_only(module, fqn: str) -> bool:
    """Linear layers whose input width splits into whole groups (others stay FP32)."""
    import torch

    return isinstance(module, torch.nn.Linear) and module.in_features % GROUP_SIZE == 0


def _packed_recipes():
    """torchao's packed INT4 tinygemm formats, each tried on the CPU (most need CUDA or mslk)."""
    from torchao.quantization import Int4WeightOnlyConfig

    try:
        from torchao.quantization.quantize_.workflows.int4.int4_packing_format import Int4PackingFormat
    except ImportError:  # an older torchao: one format, chosen by torchao
        formats = [None]
    else:
        formats = list(Int4PackingFormat)
    for fmt in formats:
        kwargs = {} if fmt is None else {"int4_packing_format": fmt}
        name = "default" if fmt is None else fmt.value
        yield Int4Recipe(
            Int4WeightOnlyConfig(group_size=GROUP_SIZE, **kwargs),
            f"torchao Int4WeightOnlyConfig ({name} packing, group {GROUP_SIZE})",
            "packed int4 (two weights per byte)",
            f"per-group weights, {GROUP_SIZE} input channels per scale and zero point (asymmetric)",
            None,
        )


def _portable_recipe():
    import torch
    from torchao.quantization import IntxWeightOnlyConfig
    from torchao.quantization.granularity import PerGroup

    return Int4Recipe(
        IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(GROUP_SIZE)),
        f"torchao IntxWeightOnlyConfig(weight_dtype=int4, group {GROUP_SIZE})",
        "int4 values in int8 storage, dequantized inside each Linear on every call",
        f"per-group weights, {GROUP_SIZE} input channels per scale (symmetric)",
        "this torchao has no packed INT4 kernel for the CPU: its portable INT4 path dequantizes the "
        "weights on every call, so expect it to be slower than FP32 at small batch sizes",
    )


def _works(recipe: Int4Recipe) -> str | None:
    """None when ``recipe`` quantizes and runs a float32 Linear on the CPU, else why not."""
    import torch
    from torchao.quantization import quantize_

    probe = torch.nn.Sequential(torch.nn.Linear(256, 64)).eval()
    try:
        quantize_(probe, recipe.config, filter_fn=_linear_only)
        with torch.inference_mode():
            probe(torch.randn(2, 256))
    except Exception as exc:  # torchao raises ValueError/ImportError/RuntimeError/... per format
        return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:120]}"
    return None


@cache
def recipe_here() -> tuple[Int4Recipe | None, str | None]:
    """The first INT4 weight-only recipe that runs on this CPU, or None and why none does."""
    reasons = []
    try:
        candidates = [*_packed_recipes(), _portable_recipe()]
    except ImportError as exc:
        return None, f"this torchao has no INT4 weight-only configs ({exc})"
    for recipe in candidates:
        why = _works(recipe)
        if why is None:
            return recipe, None
        reasons.append(f"{recipe.engine}: {why}")
    return None, "no torchao INT4 weight-only kernel runs on this CPU (" + "; ".join(reasons) + ")"


def _unavailable() -> str | None:
    if capabilities.missing("torchao"):
        return capabilities.missing("torchao")
    return recipe_here()[1]


capabilities.register_capability(CAPABILITY, _unavailable)


@register_exporter(
    MODE,
    requires=("torchao", CAPABILITY),
    devices=("cpu",),  # packed in a CPU layout
    ops_unit="GFLOP/s",  # weight-only: the arithmetic stays floating point
    libraries=("torch", "torchao"),
    description="torchao INT4 weight-only on Linear layers (convolutions and activations stay FP32)",
)
def export_int4_weight_only(ctx: ExportContext, out_dir: Path) -> Converted:
    import torch
    from torchao.quantization import quantize_

    recipe, _ = recipe_here()
    model = copy.deepcopy(ctx.model).float().eval()
    quantize_(model, recipe.config, filter_fn=_linear_only)
    quantized = [name for name, m in model.named_modules() if _linear_only(m, name)]
    if not quantized:
        raise QBenchError(
            f"{ctx.baseline().model} has no Linear layer whose input width is a multiple of "
            f"{GROUP_SIZE}; int4-weight-only has nothing to quantize in it, pick another mode."
        )
    with torch.inference_mode():
        model(ctx.example_input(2))
    artifact = "model-int4.pt"
    state_dict.FORMAT.save(out_dir / artifact, model)
    return Converted(
        artifact=artifact,
        format=state_dict.FORMAT.name,
        dtype="float32",
        engine=recipe.engine,
        weights=f"int4 (Linear only: {recipe.storage}; convolutions stay fp32)",
        activations="fp32",
        granularity=recipe.granularity,
        note=recipe.note,
        details={"quantized_linear_layers": quantized, "group_size": GROUP_SIZE},
    )
