"""Per-layer profiles of a PyTorch model: torch.profiler, with one range per module.

Every module gets a forward pre-hook and a forward hook that open and close a
``record_function`` range named after its path (``features.0``), so each operator the
profiler records sits inside the ranges of the modules that called it; an operator belongs to
the innermost one. Quantized eager modules keep their float model's names (under
``module.`` when torch.ao wrapped the model in a QuantWrapper). A layer's time is the time of
its operators: the module's Python and the hooks themselves are left to the overhead.

A ``torch.compile``'d model (a pt2e variant) runs Inductor's code, not modules, so hooks
would either recompile or never fire. There the library kernels the profiler records (oneDNN's
``onednn::qconv_pointwise``, ``quantized::max_pool2d``) are matched to the exported graph's
layers in execution order, family by family and only where the counts agree (the k-th conv
kernel of a call is the k-th conv node of the graph, whose ``nn_module_stack`` names its
module); the rest stays under ``(compiled graph)``, and Inductor's generated C++ kernels (fused
quantize/dequantize, activations, pooling), which the profiler does not record one by one,
are one row: the compiled graph's time minus the kernels it recorded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from qbench.runners._profiling import (
    LAYOUT_OPS,
    MODEL_LAYER,
    WARMUP_CALLS,
    OpTime,
    RawProfile,
    conversion_precision,
    op_kind,
)

RANGE_PREFIX = "qbench.layer:"
COMPILED_LAYER = "(compiled graph)"
OUTSIDE_LAYER = "(outside the model)"
# profiler ranges of torch.compile's machinery around a compiled graph (their own time is overhead)
WRAPPER_PREFIXES = (
    "ProfilerStep",
    "TorchDynamo",
    "Torch-Compiled Region",
    "Pregraph bytecode",
    "Postgraph bytecode",
    "AOTDispatcher",
    "CompiledFunction",
    "## ",
)
GRAPH_CALL = "## Call CompiledFxGraph"
INDUCTOR_KERNELS = "Inductor generated kernels (not recorded one by one)"
VIEW_OPS = frozenset({"aten::reshape", "aten::flatten", "aten::view", "aten::contiguous"})
_QUANTIZED_DTYPES = {torch.quint8, torch.qint8, torch.qint32, torch.quint4x2}


def module_precision(module: torch.nn.Module, output_dtype: torch.dtype | None) -> str | None:
    """int8 for torch.ao's quantized modules, else the dtype of its weights or of its output."""
    where = type(module).__module__
    if ".quantized.dynamic" in where or ".quantized.reference" in where:
        return "int8 weights, float activations"
    if ".quantized" in where:
        return "int8"
    own = [p for p in module.parameters(recurse=False) if p.is_floating_point()]
    if own:
        return str(own[0].dtype).removeprefix("torch.")
    if output_dtype is not None:
        return "int8" if output_dtype in _QUANTIZED_DTYPES else str(output_dtype).removeprefix("torch.")
    return None


def layer_names(model: torch.nn.Module) -> dict[str, str]:
    """Module path -> the layer name shown: the float model's names, so an eager INT8 variant's
    rows read like FP32's (torch.ao's QuantWrapper puts the model under ``module.``)."""
    wrapped = type(model).__name__ == "QuantWrapper"
    names = {}
    for name, _ in model.named_modules():
        shown = name.removeprefix("module.") if wrapped and name != "module" else name
        names[name] = MODEL_LAYER if shown in ("", "module") and (wrapped or not shown) else shown
    return names


def module_kind(module: torch.nn.Module) -> str | None:
    """quantize / dequantize for torch.ao's Quantize and DeQuantize modules (all their ops are)."""
    if ".quantized" not in type(module).__module__:
        return None
    return {"Quantize": "quantize", "DeQuantize": "dequantize"}.get(type(module).__name__)


class LayerRanges:
    """Forward hooks that wrap every module's call in a named profiler range."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.names = layer_names(model)
        self.kinds = {self.names[n]: k for n, m in model.named_modules() if (k := module_kind(m))}
        self.output_dtypes: dict[str, torch.dtype] = {}
        self._open: dict[str, list[Any]] = {}
        self._handles: list[Any] = []

    def _pre(self, name: str) -> Callable[..., None]:
        def hook(module, args) -> None:
            rf = torch.autograd.profiler.record_function(RANGE_PREFIX + self.names[name])
            rf.__enter__()
            self._open.setdefault(name, []).append(rf)

        return hook

    def _post(self, name: str) -> Callable[..., None]:
        def hook(module, args, output) -> None:
            stack = self._open.get(name)
            if stack:
                stack.pop().__exit__(None, None, None)
            if isinstance(output, torch.Tensor):
                self.output_dtypes[name] = output.dtype

        return hook

    def __enter__(self) -> LayerRanges:
        for name, module in self.model.named_modules():
            self._handles.append(module.register_forward_pre_hook(self._pre(name)))
            self._handles.append(module.register_forward_hook(self._post(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def precisions(self) -> dict[str, str | None]:
        """Layer name -> its precision (the innermost module of a name wins)."""
        return {
            self.names[name]: module_precision(module, self.output_dtypes.get(name))
            for name, module in self.model.named_modules()
        }


def _layout_inside(event, elapsed: Callable[[Any], float]) -> list[tuple[str, float]]:
    """Layout copies an operator made inside itself (a quantized conv turning its NCHW input
    into NHWC, a flatten's copy of an NHWC tensor): (name, microseconds) of the outermost ones."""
    found = []
    stack = [(child, event.name) for child in event.cpu_children]
    while stack:
        child, parent = stack.pop()
        if child.name in LAYOUT_OPS or (child.name == "aten::clone" and parent in VIEW_OPS):
            found.append((child.name, elapsed(child)))
        else:
            stack.extend((c, child.name) for c in child.cpu_children)
    return found


def _is_wrapper(event) -> bool:
    return event.name.startswith(WRAPPER_PREFIXES)


def _layer_of(event, compiled: bool) -> str | None:
    """The innermost module range around a top-level operator; None for an operator nested in
    another operator (its time is in its parent's)."""
    parent = event.cpu_parent
    if compiled:
        return COMPILED_LAYER if parent is None or _is_wrapper(parent) else None
    if parent is None or parent.name.startswith("ProfilerStep"):
        return OUTSIDE_LAYER
    if parent.name.startswith(RANGE_PREFIX):
        return parent.name[len(RANGE_PREFIX) :]
    return None


def _op_precision(op: str, kind: str, layer_precision: str | None) -> str | None:
    if kind in ("quantize", "dequantize"):
        return conversion_precision(kind)
    if op.startswith(("quantized::", "onednn::q", "mkldnn::q")):
        return layer_precision if layer_precision and "int8" in layer_precision else "int8"
    return layer_precision


def op_family(name: str) -> str:
    """'onednn::qconv_pointwise' / 'aten.conv2d.default' -> 'conv': what a compiled kernel and
    the exported graph's node have in common."""
    base = name.split("::")[-1].split(".")[-2 if name.count(".") >= 2 else -1]
    base = base.removeprefix("_").removesuffix("_pointwise").removesuffix("_binary")
    if base.startswith("q") and base[1:].startswith(("conv", "linear", "max_pool", "avg_pool", "adaptive")):
        base = base[1:]
    if "conv" in base:
        return "conv"
    if base in ("linear", "addmm", "mm", "matmul"):
        return "linear"
    return base


def graph_layers(model: Any) -> dict[str, list[str]]:
    """Operator family -> the modules of its nodes in execution order, from an exported graph's
    ``nn_module_stack`` (a torch.compile'd pt2e model); {} for anything else."""
    graph_module = getattr(model, "_orig_mod", model)
    if not isinstance(graph_module, torch.fx.GraphModule):
        return {}
    found: dict[str, list[str]] = {}
    for node in graph_module.graph.nodes:
        stack = node.meta.get("nn_module_stack") if node.op == "call_function" else None
        if not stack:
            continue
        path = list(stack.values())[-1][0]
        if path and "quantized_decomposed" not in str(node.target):
            found.setdefault(op_family(str(node.target)), []).append(path)
    return found


def _match_compiled(events: list[Any], layers: dict[str, list[str]], iterations: int) -> dict[int, str]:
    """id(event) -> layer for compiled-graph operators: the k-th operator of a family in a call is
    the k-th node of that family in the exported graph, where the counts agree exactly."""
    by_family: dict[str, list[Any]] = {}
    for event in sorted(events, key=lambda e: e.time_range.start):
        by_family.setdefault(op_family(event.name), []).append(event)
    matched = {}
    for family, found in by_family.items():
        nodes = layers.get(family, [])
        if nodes and len(found) == len(nodes) * iterations:
            matched.update({id(event): nodes[i % len(nodes)] for i, event in enumerate(found)})
    return matched


def _calls(events: list[Any]) -> Callable[[Any], int | None]:
    """event -> the index of the profiled call it belongs to (its ProfilerStep ancestor's)."""
    steps = sorted((e for e in events if e.name.startswith("ProfilerStep")), key=lambda e: e.time_range.start)
    index = {id(step): i for i, step in enumerate(steps)}

    def call_of(event) -> int | None:
        while event is not None and not event.name.startswith("ProfilerStep"):
            event = event.cpu_parent
        return None if event is None else index.get(id(event))

    return call_of


def profile_module(
    call: Callable[[], Any],
    sync: Callable[[], None],
    model: Any,
    iterations: int,
    *,
    compiled: bool,
    cuda: bool,
) -> RawProfile:
    """``iterations`` calls of ``call`` under torch.profiler, after WARMUP_CALLS unrecorded ones."""
    # Kineto's "gpuGetDeviceCount failed" line on a CPU-only machine is noise, not an error of the run
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile, schedule

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    ranges = LayerRanges(model) if not compiled and isinstance(model, torch.nn.Module) else None
    walls: list[float] = []
    plan = schedule(wait=0, warmup=WARMUP_CALLS, active=iterations, repeat=1)
    with _maybe(ranges), profile(activities=activities, schedule=plan) as prof:
        for step in range(WARMUP_CALLS + iterations):
            start = time.perf_counter()
            call()
            sync()
            if step >= WARMUP_CALLS:
                walls.append((time.perf_counter() - start) * 1e3)
            prof.step()
    precisions = ranges.precisions() if ranges else {}
    kinds = ranges.kinds if ranges else {}

    def elapsed(event) -> float:  # microseconds: kernel time on a GPU, operator time on the CPU
        return event.device_time_total if cuda else event.cpu_time_total

    ops: dict[tuple[str, str, str], OpTime] = {}

    def add(layer: str, op: str, kind: str, call: int | None, us: float) -> None:
        if call is None:
            return
        key = (layer, op, kind)
        if key not in ops:
            precision = _op_precision(op, kind, precisions.get(layer))
            ops[key] = OpTime(layer, op, [0.0] * iterations, kind=kind, precision=precision)
        ops[key].add(call, us / 1e3)

    events = [e for e in prof.events() if e.device_type == DeviceType.CPU]
    call_of = _calls(events)
    top = [
        (event, layer)
        for event in events
        if not event.name.startswith(RANGE_PREFIX)
        and not _is_wrapper(event)
        and (layer := _layer_of(event, compiled=ranges is None)) is not None
    ]
    matched = _match_compiled([e for e, _ in top], graph_layers(model), iterations) if ranges is None else {}
    for event, layer in top:
        layer = matched.get(id(event), layer)
        kind = kinds.get(layer) or op_kind(event.name)
        total, call = elapsed(event), call_of(event)
        if kind == "compute":
            for name, us in _layout_inside(event, elapsed):
                add(layer, f"{name} (in {event.name})", "layout", call, us)
                total -= us
        add(layer, event.name, kind, call, total)
    notes = []
    if ranges is None:
        for graph_call in (e for e in events if e.name.startswith(GRAPH_CALL)):
            unrecorded = elapsed(graph_call) - sum(elapsed(c) for c in graph_call.cpu_children)
            add(COMPILED_LAYER, INDUCTOR_KERNELS, "compute", call_of(graph_call), max(unrecorded, 0.0))
        notes.append(
            "torch.compile'd graph: Inductor fuses layers into kernels; library kernels (oneDNN "
            "convolutions, matmuls) are matched to the exported graph's layers in execution order, "
            "Inductor's generated kernels (fused quantize/dequantize, activations, pooling) are one row"
        )
    if cuda:
        notes.append("times are GPU kernel time per operator (torch.profiler, CUDA activity)")
    how = "torch.profiler, one record_function range per module" if ranges else "torch.profiler"
    return RawProfile(profiler=how, iterations=iterations, wall_ms=walls, ops=list(ops.values()), notes=notes)


@contextmanager
def _maybe(ranges: LayerRanges | None) -> Iterator[None]:
    if ranges is None:
        yield
        return
    with ranges:
        yield
