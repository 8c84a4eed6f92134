"""Static INT8 (per-channel weights, calibrated activations) with two PyTorch engines.

- ``x86``: torch.ao.quantization eager mode (QuantStub/DeQuantStub, conv+relu and
  linear+relu fused, the x86 quantized engine). Deprecated upstream, so it is
  feature-detected (capability ``ao-eager``); it is the default: as fast as PT2E at batch 1
  here and no compile step (see DEFAULT_ENGINE).
- ``pt2e``: torchao's PT2E flow (torch.export -> X86InductorQuantizer -> convert_pt2e),
  saved as an ExportedProgram and run through ``torch.compile`` with Inductor freezing,
  which is where the int8 kernels get fused. The future-proof path.

QAT (qbench.exporters.qat) reuses the preparation and conversion helpers below.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qbench.errors import QBenchError
from qbench.exporters.base import CALIB_METHODS, ENGINES, ExportContext, register_exporter
from qbench.runners.torch_runner import register_torch_loader

# Measured on the dev machine (Xeon Sapphire Rapids, AMX/VNNI, 2 shared cores; AlexNet 224, 10
# classes; best of 50/30 runs): batch 1 x86 13.1 ms vs pt2e 14.2 ms (a tie), batch 64 x86 225 ms vs
# pt2e 109 ms. `auto` takes x86 because at batch 1 it ties and it needs no compile: pt2e's first call
# per batch shape costs ~11 s of Inductor compilation in every measuring process.
DEFAULT_ENGINE = "x86"
PT2E_MAX_BATCH = 1024


@contextlib.contextmanager
def quiet():
    """Silence the upstream deprecation chatter of torch.ao eager mode (we feature-detect it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao.*")
        warnings.filterwarnings("ignore", message=".*(deprecat|migrat|quantize_per_channel).*")
        yield


@functools.cache
def cpu_has_vnni() -> bool:
    """u8 x s8 dot products without intermediate saturation (AVX512-VNNI / AVX-VNNI / AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def resolve_engine(requested: str) -> tuple[str, str]:
    """The engine to use for ``requested`` (x86 | pt2e | auto) and why."""
    from qbench import capabilities

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


def _calib_observer_name(method: str) -> tuple[str, str | None]:
    """The activation observer for a calibration method, and a note when it is approximated."""
    if method == "minmax":
        return "MinMaxObserver", None
    if method == "histogram":
        return "HistogramObserver", None
    if method in ("percentile", "entropy"):
        return (
            "HistogramObserver",
            f"PyTorch has no {method} observer; HistogramObserver (L2-optimal clipping range) stands in",
        )
    raise QBenchError(f"unknown --calib-method {method!r}; pass one of: {', '.join(CALIB_METHODS)}.")


# ---------------------------------------------------------------- eager (torch.ao) engine


def fuse_groups(model: nn.Module, prefix: str = "") -> list[list[str]]:
    """Conv(+BN)+ReLU and Linear+ReLU runs inside Sequentials, the patterns eager mode fuses."""
    groups: list[list[str]] = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        i = 0
        while i < len(children):
            run = [children[i]]
            if isinstance(children[i][1], nn.Conv2d):
                j = i + 1
                if j < len(children) and isinstance(children[j][1], nn.BatchNorm2d):
                    run.append(children[j])
                    j += 1
                if j < len(children) and isinstance(children[j][1], nn.ReLU):
                    run.append(children[j])
            elif (
                isinstance(children[i][1], nn.Linear)
                and i + 1 < len(children)
                and isinstance(children[i + 1][1], nn.ReLU)
            ):
                run.append(children[i + 1])
            if len(run) > 1:
                base = f"{prefix}{name}." if name else prefix
                groups.append([f"{base}{child}" for child, _ in run])
            i += len(run)
    return groups


def eager_qconfig(method: str, qat: bool, reduce_range: bool):
    from torch.ao import quantization as tq

    if qat:
        return tq.get_default_qat_qconfig("x86")
    observer = getattr(tq, _calib_observer_name(method)[0])
    return tq.QConfig(
        activation=observer.with_args(reduce_range=reduce_range),
        weight=tq.default_per_channel_weight_observer,
    )


def eager_prepare(model: nn.Module, method: str = "minmax", qat: bool = False) -> nn.Module:
    """Wrap in Quant/DeQuant stubs, fuse, attach observers (or fake-quant modules for QAT)."""
    from torch.ao import quantization as tq

    torch.backends.quantized.engine = "x86"
    wrapped = tq.QuantWrapper(copy.deepcopy(model))
    groups = fuse_groups(wrapped.module, prefix="module.")
    with quiet():
        if qat:
            wrapped.train()
            if groups:
                tq.fuse_modules_qat(wrapped, groups, inplace=True)
        else:
            wrapped.eval()
            if groups:
                tq.fuse_modules(wrapped, groups, inplace=True)
        wrapped.qconfig = eager_qconfig(method, qat, reduce_range=not cpu_has_vnni())
        (tq.prepare_qat if qat else tq.prepare)(wrapped, inplace=True)
    return wrapped


def eager_convert(prepared: nn.Module) -> nn.Module:
    from torch.ao import quantization as tq

    with quiet():
        return tq.convert(prepared.eval(), inplace=False)


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

    config = xiq.get_default_x86_inductor_quantization_config(is_qat=qat, reduce_range=not cpu_has_vnni())
    if qat:
        return config
    observer = {"MinMaxObserver": MinMaxObserver, "HistogramObserver": HistogramObserver}[
        _calib_observer_name(method)[0]
    ]
    act = dataclasses.replace(
        config.input_activation, observer_or_fake_quant_ctr=observer.with_args(eps=2**-12)
    )
    return dataclasses.replace(config, input_activation=act, output_activation=act)


def _dynamic_batch():
    return ({0: torch.export.Dim("batch", min=1, max=PT2E_MAX_BATCH)},)


def pt2e_prepare(model: nn.Module, example: torch.Tensor, method: str = "minmax", qat: bool = False):
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e, prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import X86InductorQuantizer

    model = copy.deepcopy(model).train(qat)
    graph = torch.export.export(model, (example,), dynamic_shapes=_dynamic_batch()).module()
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


def drop_unused_state(graph: torch.fx.GraphModule) -> None:
    """convert_pt2e leaves the FP32 weights registered beside their folded int8 copies; re-exporting
    would save both (the artifact came out larger than the FP32 model), so drop what no node reads."""
    used = {node.target for node in graph.graph.nodes if node.op == "get_attr"}
    for name, _ in [*graph.named_parameters(), *graph.named_buffers()]:
        if name in used:
            continue
        owner_name, _, attr = name.rpartition(".")
        owner = graph.get_submodule(owner_name) if owner_name else graph
        delattr(owner, attr)


def pt2e_save(converted: torch.fx.GraphModule, example: torch.Tensor, path: Path) -> None:
    from qbench.workspace import atomic_path

    drop_unused_state(converted)
    program = torch.export.export(converted, (example,), dynamic_shapes=_dynamic_batch())
    # a file object: torch.export.save warns about the temp file's suffix when given a path
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.export.save(program, fh)


# ---------------------------------------------------------------- shared by int8-ptq and qat


def calibrate(model: Callable, batches: Iterable[torch.Tensor], ctx: ExportContext, label: str) -> None:
    batches = list(batches)
    task = ctx.progress.add_task(label, total=len(batches), status="") if ctx.progress else None
    with torch.no_grad():
        for batch in batches:
            model(batch)
            if task is not None:
                ctx.progress.advance(task)


def save_converted(
    engine: str, converted: Any, ctx: ExportContext, out_dir: Path, stem: str
) -> dict[str, Any]:
    """Check that ``converted`` holds real int8 operators, save it, return its variant fields."""
    from qbench.workspace import atomic_path

    example = ctx.example_input(2)
    if engine == "x86":
        ops = eager_quantized_ops(converted)
        check_quantized(ops, "x86")
        _check_runs(converted, example, "x86")
        artifact = f"{stem}.pt"
        with atomic_path(out_dir / artifact) as tmp:
            torch.save(converted.state_dict(), tmp)
        return {
            "artifact": artifact,
            "format": "ao-eager-int8",
            "engine": "torch.ao.quantization eager, x86 quantized engine",
            "quantized_engine": "x86",
            "quantized_ops": ops,
            "fused": fuse_groups(ctx.model),
        }
    ops = pt2e_quantized_ops(converted)
    _check_pt2e(ops)
    artifact = f"{stem}.pt2"
    pt2e_save(converted, example, out_dir / artifact)
    return {
        "artifact": artifact,
        "format": "pt2e",
        "engine": "torchao PT2E + X86InductorQuantizer, torch.compile (Inductor, freezing)",
        "quantized_engine": "inductor (oneDNN int8 kernels)",
        "quantized_ops": ops,
        "compile": True,
        # applied globally by the loader: torch.compile(options={"freezing": True}) was not honoured
        # reliably here (the int8 weight prepack then ran on fake tensors and compilation failed)
        "inductor_config": {"freezing": True},
    }


def common_fields(ctx: ExportContext, engine: str, why: str, method: str | None) -> dict[str, Any]:
    fields = {
        "dtype": "float32",  # the runner's input and output dtype; int8 lives inside
        "engine_choice": {"engine": engine, "requested": ctx.options.engine, "why": why},
        "weights": "int8",
        "activations": "uint8",
        "granularity": "per-channel weights (symmetric), per-tensor activations (affine)",
        "reduce_range": not cpu_has_vnni(),
    }
    if method is not None:
        observer, note = _calib_observer_name(method)
        fields["calibration_observer"] = observer
        if note:
            fields["calibration_note"] = note
    return fields


@register_exporter(
    "int8-ptq",
    description="static INT8 PTQ: per-channel weights, calibrated activations (x86 eager or PT2E)",
)
def export_int8_ptq(ctx: ExportContext, out_dir: Path) -> dict[str, Any]:
    engine, why = resolve_engine(ctx.options.engine)
    method = ctx.options.calib_method
    _calib_observer_name(method)
    batches, calib = ctx.calibration_batches()
    try:
        fields = _ptq(engine, ctx, batches, method, out_dir)
    except QBenchError:
        if ctx.options.engine != "auto" or engine != "x86":
            raise
        engine, why = "pt2e", "auto: eager x86 cannot quantize this architecture, using torchao PT2E"
        fields = _ptq(engine, ctx, batches, method, out_dir)
    return {**fields, **common_fields(ctx, engine, why, method), "calibration": {"method": method, **calib}}


def _ptq(engine: str, ctx: ExportContext, batches, method: str, out_dir: Path) -> dict[str, Any]:
    torch.manual_seed(ctx.options.seed)
    if engine == "x86":
        prepared = eager_prepare(ctx.model, method)
        calibrate(prepared, batches, ctx, "int8-ptq calibration (x86)")
        converted = eager_convert(prepared)
    else:
        prepared = pt2e_prepare(ctx.model, ctx.example_input(2), method)
        calibrate(prepared, batches, ctx, "int8-ptq calibration (pt2e)")
        converted = pt2e_convert(prepared)
    return save_converted(engine, converted, ctx, out_dir, "model-int8")


# ---------------------------------------------------------------- loaders (runner side)


def corrupt_artifact(path: Path, mode: str, exc: BaseException) -> QBenchError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    return QBenchError(
        f"artifact {path} cannot be loaded ({first}); it is corrupt or truncated: "
        f"rerun 'qbench quantize --mode {mode}'."
    )


def require_artifact(path: Path, mode: str) -> None:
    if not path.is_file():
        raise QBenchError(f"artifact {path} does not exist; rerun 'qbench quantize --mode {mode}'.")


def read_state_artifact(path: Path, mode: str) -> dict[str, torch.Tensor]:
    """The saved quantized state dict; a missing or unreadable file is a user error naming the fix."""
    require_artifact(path, mode)
    try:
        with quiet():
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise corrupt_artifact(path, mode, exc) from None


def load_state_into(model: nn.Module, state: dict[str, torch.Tensor], path: Path, mode: str) -> nn.Module:
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        raise corrupt_artifact(path, mode, exc) from None
    return model.eval()


@register_torch_loader("ao-eager-int8")
def load_ao_eager(path: Path, variant: dict[str, Any]) -> nn.Module:
    """Rebuild the architecture, convert it uncalibrated, then load the saved int8 state."""
    from qbench.baselines.models import create_model

    mode = variant.get("mode", "int8-ptq")
    state = read_state_artifact(path, mode)
    base = variant["baseline"]
    skeleton = create_model(base["model"], num_classes=base["num_classes"]).eval()
    with quiet():
        prepared = eager_prepare(skeleton, "minmax")
        prepared(torch.zeros(1, 3, base["input_size"], base["input_size"]))
        model = eager_convert(prepared)
    torch.backends.quantized.engine = variant.get("quantized_engine", "x86")
    return load_state_into(model, state, path, mode)


@register_torch_loader("pt2e")
def load_pt2e(path: Path, variant: dict[str, Any]) -> nn.Module:
    import torchao.quantization.pt2e.quantize_pt2e

    # importing the quantizer registers torchao's Inductor int8 fusion and weight-prepack passes;
    # without them Inductor dequantizes every weight on every call (AlexNet ran 30x slower)
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401
    from torchao.quantization.pt2e import allow_exported_model_train_eval

    mode = variant.get("mode", "int8-ptq")
    require_artifact(path, mode)
    try:
        with quiet(), _silence_export_log():
            graph = torch.export.load(path).module()
    except Exception as exc:
        raise corrupt_artifact(path, mode, exc) from None
    allow_exported_model_train_eval(graph)
    import torch._inductor.config as inductor_config

    for key, value in variant.get("inductor_config", {}).items():
        setattr(inductor_config, key, value)
    return graph


@contextlib.contextmanager
def _silence_export_log():
    """torch.export.load logs a full traceback before raising on a bad file; the error says enough."""
    import logging

    log = logging.getLogger("torch.export")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)
