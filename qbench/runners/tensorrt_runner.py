"""TensorRT runner: a deserialized .plan (qbench.artifacts.tensorrt_plan), torch CUDA tensors as
buffers, execute_async_v3 on a torch CUDA stream (no pycuda). tensorrt is imported inside load().

Profiling (``profile``) runs a second execution context of the same engine with an
``IProfiler`` attached; TensorRT reports each (fused) layer's time after every call. Its layer
names are the ONNX node names joined by `` + `` and are mapped back to the torch layers through
the FP32 ONNX export of the workspace's ``onnx`` variant when there is one (the TensorRT
variants are built from the same export, so the node names agree).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from qbench.runners._profiling import WARMUP_CALLS, OpTime, RawProfile, op_kind
from qbench.runners.base import Runner, register_runner

FP32_ONNX = ("onnx", "model.onnx")  # the workspace's onnx variant's export, beside this variant's folder


def _torch_dtype(trt, dtype) -> torch.dtype:
    table = {
        trt.DataType.FLOAT: torch.float32,
        trt.DataType.HALF: torch.float16,
        trt.DataType.INT8: torch.int8,
        trt.DataType.INT32: torch.int32,
        trt.DataType.BOOL: torch.bool,
    }
    if hasattr(trt.DataType, "BF16"):
        table[trt.DataType.BF16] = torch.bfloat16
    return table[dtype]


@register_runner("tensorrt")
class TensorRTRunner(Runner):
    name = "tensorrt"

    def load(self) -> None:
        plan = self.load_artifact()  # checks CUDA and tensorrt, deserializes the engine
        trt = self.trt = plan.trt
        self.device = self.device if self.device.startswith("cuda") else "cuda"
        self.logger, self.runtime, self.engine = plan.logger, plan.runtime, plan.engine
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.input_name = inputs[0]
        self.output_names = [n for n in names if n not in inputs]
        self.input_dtype = _torch_dtype(trt, self.engine.get_tensor_dtype(self.input_name))
        self.stream = torch.cuda.Stream(device=self.device)
        self.outputs: dict[tuple, dict[str, torch.Tensor]] = {}

    def prepare(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.to(self.device, self.input_dtype).contiguous()

    def _output_buffers(self, shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        # allocated once per input shape so the timed call does no allocation
        if shape not in self.outputs:
            self.outputs[shape] = {
                name: torch.empty(
                    tuple(self.context.get_tensor_shape(name)),
                    dtype=_torch_dtype(self.trt, self.engine.get_tensor_dtype(name)),
                    device=self.device,
                )
                for name in self.output_names
            }
        return self.outputs[shape]

    def infer(self, native_input: torch.Tensor) -> torch.Tensor:
        self.context.set_input_shape(self.input_name, tuple(native_input.shape))
        outputs = self._output_buffers(tuple(native_input.shape))
        self.context.set_tensor_address(self.input_name, native_input.data_ptr())
        for name, tensor in outputs.items():
            self.context.set_tensor_address(name, tensor.data_ptr())
        # the input was written on the current stream; the engine runs on ours
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed; see the TensorRT log above")
        return outputs[self.output_names[0]]

    def sync(self) -> None:
        self.stream.synchronize()

    def to_logits(self, output: torch.Tensor) -> torch.Tensor:
        self.stream.synchronize()
        return output.float().cpu().clone()

    def close(self) -> None:
        self.outputs = {}
        self.context = self.engine = self.runtime = None

    def profile(self, native_input: torch.Tensor, iterations: int) -> RawProfile:
        trt = self.trt

        class LayerTimes(trt.IProfiler):
            def __init__(self) -> None:
                trt.IProfiler.__init__(self)
                self.reported: list[tuple[str, float]] = []

            def report_layer_time(self, layer_name: str, ms: float) -> None:
                self.reported.append((layer_name, ms))

        profiler = LayerTimes()
        timed_context, self.context = self.context, self.engine.create_execution_context()
        self.context.profiler = profiler
        self.context.enqueue_emits_profile = False  # report once per call, after it has finished
        calls: list[list[tuple[str, float]]] = []
        walls = []
        try:
            for step in range(WARMUP_CALLS + iterations):
                profiler.reported = []
                start = time.perf_counter()
                self.infer(native_input)
                self.sync()
                wall = (time.perf_counter() - start) * 1e3
                self.context.report_to_profiler()
                if step >= WARMUP_CALLS:
                    walls.append(wall)
                    calls.append(profiler.reported)
        finally:
            self.context = timed_context
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
            "stream": "torch.cuda.Stream + execute_async_v3",
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
