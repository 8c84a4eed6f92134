"""Static INT8 (per-channel weights, calibrated activations) with two PyTorch engines.

- ``x86``: torch.ao.quantization eager mode (QuantStub/DeQuantStub, conv+relu and
  linear+relu fused, the x86 quantized engine), artifact format ``ao-eager-int8``.
  Deprecated upstream, so it is feature-detected (capability ``ao-eager``); it is the
  default: as fast as PT2E at batch 1 here and no compile step (see DEFAULT_ENGINE).
- ``pt2e``: torchao's PT2E flow (torch.export -> X86InductorQuantizer -> convert_pt2e),
  artifact format ``pt2e``: an ExportedProgram run through ``torch.compile`` with Inductor
  freezing, which is where the int8 kernels get fused. The future-proof path.

QAT (qbench.exporters.qat) reuses the preparation, conversion and saving helpers below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qbench import capabilities
from qbench.artifacts import ao_eager, pt2e
from qbench.artifacts._torch import quiet
from qbench.artifacts.ao_eager import OBSERVERS, eager_convert, eager_prepare, fuse_groups
from qbench.errors import QBenchError
from qbench.exporters.base import Converted, ExportContext, register_exporter
from qbench.records.config import CALIB_METHODS, ENGINES

# Measured on the dev machine (Xeon Sapphire Rapids, AMX/VNNI, 2 shared cores; AlexNet 224, 10
# classes; best of 50/30 runs): batch 1 x86 13.1 ms vs pt2e 14.2 ms (a tie), batch 64 x86 225 ms vs
# pt2e 109 ms. `auto` takes x86 because at batch 1 it ties and it needs no compile: pt2e's first call
# per batch shape costs ~11 s of Inductor compilation in every measuring process.
DEFAULT_ENGINE = "x86"
LIBRARIES = ("torch", "torchao")


def resolve_engine(requested: str) -> tuple[str, str]:
    """The engine to use for ``requested`` (x86 | pt2e | auto) and why."""
    if requested not in (*ENGINES, "auto"):
        raise QBenchError(f"unknown --engine {requested!r}; pass one of: x86, pt2e, auto.")
    if requested != "auto":
        needs = "ao-eager" if requested == "x86" else "torchao"
        reason = capabilities.missing(needs)
        if reason:
            raise QBenchError(f"--engine {requested} is unavailable here ({reason}); pass --engine auto.")
        return requested, "requested with --engine"
    if DEFAULT_ENGINE == "x86" and not capabilities.missing("ao-eager"):
        return (
            "x86",
            "auto: eager x86 ties PT2E at batch 1 here and needs no compile step (see DEFAULT_ENGINE)",
        )
    if not capabilities.missing("torchao"):
        return "pt2e", "auto: torch.ao eager mode is unavailable in this torch, using torchao PT2E"
    raise QBenchError("no INT8 engine is available; pip install torchao or use a torch with torch.ao.")


def observer_for(method: str) -> tuple[str, str | None]:
    """The activation observer for a calibration method, and a note when it is approximated."""
    if method not in OBSERVERS:
        raise QBenchError(f"unknown --calib-method {method!r}; pass one of: {', '.join(CALIB_METHODS)}.")
    observer = OBSERVERS[method]
    if method in ("percentile", "entropy"):
        return observer, f"PyTorch has no {method} observer; {observer} (L2-optimal clipping range) stands in"
    return observer, None


# ---------------------------------------------------------------- eager (torch.ao) engine checks


def eager_quantized_ops(model: nn.Module) -> dict[str, int]:
    counts: dict[str, int] = {}
    for module in model.modules():
        kind = type(module)
        if ".quantized" in kind.__module__ and kind.__name__ not in ("DeQuantize",):
            counts[kind.__name__] = counts.get(kind.__name__, 0) + 1
    return counts


def check_quantized(ops: dict[str, int], what: str) -> None:
    heavy = sum(n for k, n in ops.items() if "Conv" in k or "Linear" in k or "conv" in k or "linear" in k)
    if not heavy:
        raise RuntimeError(
            f"{what}: the converted model contains no quantized conv/linear operators ({ops}); "
            "the conversion silently left the model in floating point"
        )


def _check_runs(model: Callable, example: torch.Tensor, engine: str) -> None:
    try:
        with torch.inference_mode():
            model(example)
    except (RuntimeError, NotImplementedError) as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise QBenchError(
            f"the {engine}-quantized model does not run ({first}); eager mode cannot quantize this "
            "architecture's functional ops: pass --engine pt2e."
        ) from None


# ---------------------------------------------------------------- PT2E (torchao) engine


def pt2e_config(method: str, qat: bool):
    from torchao.quantization.pt2e import HistogramObserver, MinMaxObserver
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    reduce_range = not capabilities.cpu_has_vnni()
    config = xiq.get_default_x86_inductor_quantization_config(is_qat=qat, reduce_range=reduce_range)
    if qat:
        return config
    observer = {"MinMaxObserver": MinMaxObserver, "HistogramObserver": HistogramObserver}[
        observer_for(method)[0]
    ]
    act = dataclasses.replace(
        config.input_activation, observer_or_fake_quant_ctr=observer.with_args(eps=2**-12)
    )
    return dataclasses.replace(config, input_activation=act, output_activation=act)


def pt2e_prepare(model: nn.Module, example: torch.Tensor, method: str = "minmax", qat: bool = False):
    import copy

    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e, prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import X86InductorQuantizer

    model = copy.deepcopy(model).train(qat)
    graph = torch.export.export(model, (example,), dynamic_shapes=pt2e.dynamic_batch()).module()
    quantizer = X86InductorQuantizer()
    quantizer.set_global(pt2e_config(method, qat))
    with quiet():
        return (prepare_qat_pt2e if qat else prepare_pt2e)(graph, quantizer)


def pt2e_convert(prepared) -> torch.fx.GraphModule:
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    move_exported_model_to_eval(prepared)
    with quiet():
        return convert_pt2e(prepared)


def pt2e_quantized_ops(graph: torch.fx.GraphModule) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in graph.graph.nodes:
        target = str(node.target)
        if node.op == "call_function" and "quantize" in target:
            name = target.split(".")[-2]
            counts[name] = counts.get(name, 0) + 1
    return counts


def _check_pt2e(ops: dict[str, int]) -> None:
    if not ops.get("quantize_per_tensor") or not ops.get("dequantize_per_channel"):
        raise RuntimeError(
            f"pt2e: the converted graph has no quantize_per_tensor/dequantize_per_channel nodes ({ops}); "
            "X86InductorQuantizer annotated nothing"
        )


# ---------------------------------------------------------------- shared by int8-ptq and qat


def calibrate(model: Callable, batches: Iterable[torch.Tensor], ctx: ExportContext, label: str) -> None:
    batches = list(batches)
    task = ctx.progress.add_task(label, total=len(batches), status="") if ctx.progress else None
    with torch.no_grad():
        for batch in batches:
            model(batch)
            if task is not None:
                ctx.progress.advance(task)


def _save(engine: str, converted: Any, ctx: ExportContext, out_dir: Path, stem: str) -> Converted:
    """Check that ``converted`` holds real int8 operators and save it in its engine's format."""
    example = ctx.example_input(2)
    if engine == "x86":
        ops = eager_quantized_ops(converted)
        check_quantized(ops, "x86")
        _check_runs(converted, example, "x86")
        artifact = f"{stem}.pt"
        ao_eager.FORMAT.save(out_dir / artifact, converted)
        return Converted(
            artifact=artifact,
            format=ao_eager.FORMAT.name,
            dtype="float32",
            engine="torch.ao.quantization eager, x86 quantized engine",
            details={
                "quantized_engine": ao_eager.QUANTIZED_ENGINE,
                "quantized_ops": ops,
                "fused": fuse_groups(ctx.model),
            },
        )
    ops = pt2e_quantized_ops(converted)
    _check_pt2e(ops)
    artifact = f"{stem}.pt2"
    pt2e.FORMAT.save(out_dir / artifact, converted, example)
    return Converted(
        artifact=artifact,
        format=pt2e.FORMAT.name,
        dtype="float32",
        engine="torchao PT2E + X86InductorQuantizer, torch.compile (Inductor, freezing)",
        details={
            "quantized_engine": "inductor (oneDNN int8 kernels)",
            "quantized_ops": ops,
            "compile": True,
            "inductor_config": dict(pt2e.INDUCTOR_CONFIG),
        },
    )


def save_int8(
    engine: str, why: str, converted: Any, ctx: ExportContext, out_dir: Path, stem: str
) -> Converted:
    """Save an int8 model of either engine with the fields int8-ptq and qat share."""
    result = _save(engine, converted, ctx, out_dir, stem)
    # dtype float32: the runner's input and output; int8 lives inside
    result.weights, result.activations = "int8", "uint8"
    result.granularity = "per-channel weights (symmetric), per-tensor activations (affine)"
    result.details.update(
        engine_choice={"engine": engine, "requested": ctx.options.engine, "why": why},
        reduce_range=not capabilities.cpu_has_vnni(),
    )
    return result


@register_exporter(
    "int8-ptq",
    ops_unit="GOP/s",
    libraries=LIBRARIES,
    description="static INT8 PTQ: per-channel weights, calibrated activations (x86 eager or PT2E)",
)
def export_int8_ptq(ctx: ExportContext, out_dir: Path) -> Converted:
    engine, why = resolve_engine(ctx.options.engine)
    method = ctx.options.calib_method
    observer, note = observer_for(method)
    batches, calib = ctx.calibration_batches()
    try:
        converted = _ptq(engine, ctx, batches, method)
    except QBenchError:
        if ctx.options.engine != "auto" or engine != "x86":
            raise
        engine, why = "pt2e", "auto: eager x86 cannot quantize this architecture, using torchao PT2E"
        converted = _ptq(engine, ctx, batches, method)
    result = save_int8(engine, why, converted, ctx, out_dir, "model-int8")
    result.calibration = dataclasses.replace(calib, observer=observer, note=note)
    return result


def _ptq(engine: str, ctx: ExportContext, batches, method: str):
    torch.manual_seed(ctx.options.seed)
    if engine == "x86":
        prepared = eager_prepare(ctx.model, method)
        calibrate(prepared, batches, ctx, "int8-ptq calibration (x86)")
        converted = eager_convert(prepared)
        # eager mode cannot quantize some functional ops: fail here so auto can fall back to PT2E
        _check_runs(converted, ctx.example_input(2), "x86")
        return converted
    prepared = pt2e_prepare(ctx.model, ctx.example_input(2), method)
    calibrate(prepared, batches, ctx, "int8-ptq calibration (pt2e)")
    return pt2e_convert(prepared)
