"""TensorRT runner: a deserialized .plan (qbench.artifacts.tensorrt_plan), torch CUDA tensors as
buffers, execute_async_v3 on the runner's own CUDA stream (no pycuda), the one the harness's
events are recorded on. tensorrt is imported inside load().

Each input shape gets an execution context bound to the optimization profile built for its
batch size (the exporter builds one per batch size, kernels tuned for it); a batch size the
engine has no profile for, or a shape TensorRT refuses, is a one-sentence error. With
``--cuda-graph`` the enqueue of each shape is captured once and replayed.

Profiling (``profile``) runs a second execution context of the same engine with an
``IProfiler`` attached; TensorRT reports each (fused) layer's time after every call. Its layer
names are the ONNX node names joined by `` + `` and are mapped back to the torch layers through
the FP32 ONNX export of the workspace's ``onnx`` variant when there is one (the TensorRT
variants are built from the same export, so the node names agree).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

from qbench.artifacts.tensorrt_plan import enqueue, shape_context, torch_dtype
from qbench.errors import QBenchError
from qbench.runners._cuda_graph import CapturedCall, capture
from qbench.runners._profiling import WARMUP_CALLS, OpTime, RawProfile, op_kind
from qbench.runners.base import Runner, register_runner

FP32_ONNX = ("onnx", "model.onnx")  # the workspace's onnx variant's export, beside this variant's folder


@dataclass
class _ShapeSetup:
    """One input shape on its own execution context, bound to the profile built for that batch size."""

    context: Any
    outputs: dict[str, torch.Tensor]
    graph: CapturedCall | None = None


def engine_profiles(details: dict[str, Any]) -> list[tuple[int, int, int, int]]:
    """(index, min, opt, max batch) of each optimization profile a variant record lists: one per
    batch size (``details["profiles"]``), or an older engine's single dynamic profile."""
    listed = details.get("profiles") or []
    if not listed and (details.get("profile") or {}).get("input"):
        listed = [{"index": 0, **details["profile"]["input"]}]
    return [(int(p["index"]), int(p["min"][0]), int(p["opt"][0]), int(p["max"][0])) for p in listed]


def profile_for(batch_size: int, details: dict[str, Any], mode: str) -> int:
    """The optimization profile for ``batch_size``: among those admitting it, the one tuned for
    it (opt equal to it), else the narrowest; a one-sentence error naming the fix when none does."""
    admitting = [p for p in engine_profiles(details) if p[1] <= batch_size <= p[3]]
    if admitting:
        index, *_ = min(admitting, key=lambda p: (p[2] != batch_size, p[3] - p[1]))
        return index
    built = ", ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for _, lo, _, hi in engine_profiles(details))
    raise QBenchError(
        f"the {mode} engine has no optimization profile for batch size {batch_size} (built for "
        f"{built or 'none'}); rerun 'qbench quantize --mode {mode} --batch-sizes' with the sizes you bench."
    )


@register_runner("tensorrt")
class TensorRTRunner(Runner):
    name = "tensorrt"
    devices = ("cuda",)
    supports_cuda_graph = True

    def load(self) -> None:
        if not self.cuda:  # bench skips a cuda-only variant under --device cpu; this guards direct use
            raise QBenchError(f"{self.variant.mode} runs on a CUDA device only; pass --device cuda.")
        torch.cuda.set_device(self.cuda_index)  # the engine deserializes onto the current device
        self.plan = self.load_artifact()  # checks CUDA and tensorrt, deserializes the engine
        self.trt, self.engine = self.plan.trt, self.plan.engine
        self.input_name, self.output_names = self.plan.io_names()
        self.input_dtype = torch_dtype(self.trt, self.engine.get_tensor_dtype(self.input_name))
        self.setups: dict[tuple[int, ...], _ShapeSetup] = {}

    def max_batch_size(self) -> int | None:
        return max((high for *_, high in engine_profiles(self.variant.details)), default=None)

    def batch_size_for(self, n: int) -> int:
        ranges = [(low, high) for _, low, _, high in engine_profiles(self.variant.details)]
        if any(low <= n <= high for low, high in ranges):
            return n
        larger = [low for low, _ in ranges if low > n]
        return min(larger) if larger else n  # none: prepare says which sizes the engine takes

    def prepare(self, batch: torch.Tensor) -> torch.Tensor | CapturedCall:
        x = batch.to(self.device, self.input_dtype).contiguous()
        setup = self._setup(tuple(x.shape))
        if not self.cuda_graph:
            return x
        if setup.graph is None:
            setup.graph = capture(lambda inp: self._enqueue(setup, inp), x.clone(), self.stream)
        setup.graph.input.copy_(x)
        return setup.graph

    def _setup(self, shape: tuple[int, ...]) -> _ShapeSetup:
        """The context for ``shape``: the profile built for its batch size selected, the input
        shape set (both checked), output buffers allocated once so the timed call allocates nothing."""
        if shape not in self.setups:
            index = profile_for(shape[0], self.variant.details, self.variant.mode)
            context, outputs = shape_context(
                self.plan, index, shape, self.stream, self.device, self.variant.mode
            )
            self.setups[shape] = _ShapeSetup(context, outputs)
        return self.setups[shape]

    def _enqueue(self, setup: _ShapeSetup, x: torch.Tensor) -> torch.Tensor:
        enqueue(setup.context, self.input_name, x, self.stream)
        return setup.outputs[self.output_names[0]]

    def infer(self, native_input: torch.Tensor | CapturedCall) -> torch.Tensor:
        if isinstance(native_input, CapturedCall):
            return native_input.replay()
        return self._enqueue(self._setup(tuple(native_input.shape)), native_input)

    def to_logits(self, output: torch.Tensor) -> torch.Tensor:
        self.stream.synchronize()
        return output.float().cpu().clone()

    def close(self) -> None:
        self.setups = {}
        self.plan = self.engine = None

    def profile(self, native_input: torch.Tensor, iterations: int) -> RawProfile:
        trt = self.trt

        class LayerTimes(trt.IProfiler):
            def __init__(self) -> None:
                trt.IProfiler.__init__(self)
                self.reported: list[tuple[str, float]] = []

            def report_layer_time(self, layer_name: str, ms: float) -> None:
                self.reported.append((layer_name, ms))

        profiler = LayerTimes()
        x = native_input.input if isinstance(native_input, CapturedCall) else native_input
        shape = tuple(x.shape)
        timed = self.setups.pop(shape, None)
        setup = self._setup(shape)  # a second context: the timed one never carries a profiler
        setup.context.profiler = profiler
        setup.context.enqueue_emits_profile = False  # report once per call, after it has finished
        calls: list[list[tuple[str, float]]] = []
        walls = []
        try:
            for step in range(WARMUP_CALLS + iterations):
                profiler.reported = []
                start = time.perf_counter()
                self._enqueue(setup, x)
                self.sync()
                wall = (time.perf_counter() - start) * 1e3
                setup.context.report_to_profiler()
                if step >= WARMUP_CALLS:
                    walls.append(wall)
                    calls.append(profiler.reported)
        finally:
            if timed is not None:
                self.setups[shape] = timed
        layers, note = self._layer_map()
        ops: dict[tuple[str, str], OpTime] = {}
        for call, reported in enumerate(calls):
            for name, ms in reported:
                kind = trt_kind(name)
                layer = layers.layer_of_parts(name) if layers is not None else name
                key = (layer, name)
                if key not in ops:
                    ops[key] = OpTime(layer, name, [0.0] * iterations, kind=kind)
                ops[key].add(call, ms)
        notes = [note] if note else []
        notes.append(
            f"median layer count per call: {statistics.median(len(c) for c in calls) if calls else 0:g}"
        )
        return RawProfile(
            profiler="TensorRT IProfiler (per fused layer)",
            iterations=iterations,
            wall_ms=walls,
            ops=list(ops.values()),
            notes=notes,
        )

    def _layer_map(self):
        """The ONNX layer map of the workspace's FP32 export, or None and why not."""
        source = self.variant_dir.parent.joinpath(*FP32_ONNX)
        if not source.is_file():
            return (
                None,
                "layer names are TensorRT's (no FP32 ONNX export in this workspace to map them to the "
                "model's layers)",
            )
        import onnx

        from qbench.runners._onnx_layers import OnnxLayerMap

        return OnnxLayerMap(onnx.load(str(source), load_external_data=False)), None

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "tensorrt": getattr(self.trt, "__version__", None) if hasattr(self, "trt") else None,
            "io_dtype": str(getattr(self, "input_dtype", "")).removeprefix("torch."),
            "enqueue": "execute_async_v3 on the runner's stream, one execution context per optimization profile",
        }


def trt_kind(layer_name: str) -> str:
    """A TensorRT layer's kind: reformatting layers are layout conversions; a layer made only of
    QuantizeLinear/DequantizeLinear nodes is a (de)quantize step; anything fused with compute is compute."""
    if "reformat" in layer_name.lower() or "CopyNode" in layer_name:
        return "layout"
    parts = [p.strip() for p in layer_name.split("+") if p.strip()]
    kinds = {
        (
            "quantize"
            if "QuantizeLinear" in p and "Dequantize" not in p
            else "dequantize"
            if "DequantizeLinear" in p
            else "compute"
        )
        for p in parts
    }
    if len(kinds) == 1:
        kind = kinds.pop()
        return kind if kind != "compute" else op_kind(layer_name)
    return "compute"
