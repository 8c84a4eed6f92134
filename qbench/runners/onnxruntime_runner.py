"""ONNX Runtime runner: one InferenceSession per variant (qbench.artifacts.onnx), thread counts
set and recorded.

On a GPU the session's provider (CUDA, or TensorRT for a variant that asks for it) enqueues on
the runner's own stream (``user_compute_stream``), inputs and outputs are bound on the device
(IO binding: no host copies inside the timed call) and ``run`` does not wait for the device
(``disable_synchronize_execution_providers``): the harness's CUDA events on that stream time the
GPU work, its synchronize the host latency. The session must have loaded the provider asked for.

Profiling (``profile``) opens a second session of the same model with the same options plus
ONNX Runtime's own profiler (``SessionOptions.enable_profiling``; ``end_profiling`` writes a
Chrome-trace JSON with one ``<node>_kernel_time`` event per node and call, in execution
order). Node names are mapped back to the torch layers (qbench.runners._onnx_layers); a node
ONNX Runtime inserted (a reorder, a layout transpose) joins the layer it feeds, a
``ReorderOutput`` the layer whose output it converts. The timed session is never profiled.
"""

from __future__ import annotations

import bisect
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qbench.runners._profiling import (
    WARMUP_CALLS,
    OpTime,
    RawProfile,
    conversion_precision,
    op_kind,
)
from qbench.runners.base import Runner, register_runner

# a session's tensor types -> numpy, and numpy -> torch (IO binding on the GPU)
_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
_TORCH_TYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16}

# ONNX Runtime's type names in profile events -> qbench's precision names
_ORT_TYPES = {
    "float": "float32",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "uint8": "int8",
    "int8": "int8",
}


@register_runner("onnxruntime")
class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"

    def load(self) -> None:
        from qbench.artifacts.onnx import open_session

        stream = self.stream  # first: on a GPU it checks the device and makes it current
        self.session = open_session(
            self.artifact,
            self.variant.mode,
            threads=self.threads,
            device=self.session_device,
            provider=self.variant.details.get("provider"),
            cuda_stream=stream.cuda_stream if stream is not None else None,
            provider_options=self.provider_options(),
        )
        model_input, model_output = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name, self.output_name = model_input.name, model_output.name
        self.input_dtype = _NUMPY_TYPES.get(model_input.type, np.float32)
        self.output_dtype = _NUMPY_TYPES.get(model_output.type, np.float32)
        if self.cuda:
            import onnxruntime as ort

            self.device_id = self.cuda_index
            self.bindings: dict[tuple[int, ...], tuple[Any, torch.Tensor, torch.Tensor | None]] = {}
            # run returns once the work is enqueued on our stream; sync() waits for it, so the
            # harness's events time the GPU work, not a host-side wait inside run
            self.run_options = ort.RunOptions()
            self.run_options.add_run_config_entry("disable_synchronize_execution_providers", "1")

    @property
    def session_device(self) -> str:
        """The device the session opens on: 'cuda:N' of the runner's own stream, or 'cpu'."""
        return f"cuda:{self.cuda_index}" if self.cuda else self.device

    def provider_options(self) -> dict[str, str]:
        """The GPU provider's options: those the variant was converted with (cache paths, relative
        to its folder there, made absolute) and --tf32 as the CUDA provider's use_tf32 (its
        default is on). Nothing on the CPU."""
        if not self.cuda:
            return {}
        from qbench.artifacts.onnx import recorded_provider_options

        options = recorded_provider_options(self.variant, self.variant_dir)
        if self.tf32 is not None and self.variant.details.get("provider") != "tensorrt":
            options["use_tf32"] = "1" if self.tf32 else "0"
        return options

    def max_batch_size(self) -> int | None:
        """The TensorRT provider's profile ends at the largest batch the variant was converted for."""
        return self.variant.details.get("max_batch")

    def prepare(self, batch: torch.Tensor) -> np.ndarray | torch.Tensor:
        if self.cuda:  # inputs and outputs stay on the device (IO binding): no copies in the timed call
            return batch.to(self.device, _TORCH_TYPES[np.dtype(self.input_dtype)]).contiguous()
        return np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=self.input_dtype)

    def infer(self, native_input: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        if not self.cuda:
            return self.session.run([self.output_name], {self.input_name: native_input})[0]
        binding, output = self._binding(native_input)
        self.session.run_with_iobinding(binding, self.run_options)
        return output

    def _binding(self, x: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """The IO binding for ``x``'s shape and the device buffer its logits land in: one per
        shape, the input bound again only when a new tensor comes (the timed loop reuses one, so
        the timed call only runs)."""
        shape = tuple(x.shape)
        if shape not in self.bindings:
            output = torch.empty(
                (x.shape[0], self.variant.baseline.num_classes),
                dtype=_TORCH_TYPES[np.dtype(self.output_dtype)],
                device=self.device,
            )
            binding = self.session.io_binding()
            binding.bind_output(
                self.output_name,
                "cuda",
                self.device_id,
                self.output_dtype,
                tuple(output.shape),
                output.data_ptr(),
            )
            self.bindings[shape] = (binding, output, None)
        binding, output, bound = self.bindings[shape]
        if bound is not x:
            binding.bind_input(self.input_name, "cuda", self.device_id, self.input_dtype, shape, x.data_ptr())
            self.bindings[shape] = (binding, output, x)  # held, so its memory is not reused meanwhile
        return binding, output

    def to_logits(self, output: np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(output, torch.Tensor):
            self.sync()
            return output.float().cpu().clone()
        return torch.from_numpy(np.asarray(output, dtype=np.float32))

    def close(self) -> None:
        self.session = None
        self.bindings = {}

    def profile(self, native_input: np.ndarray, iterations: int) -> RawProfile:
        import onnx

        from qbench.artifacts.onnx import open_session
        from qbench.runners._onnx_layers import OnnxLayerMap

        with tempfile.TemporaryDirectory(prefix="qbench-ort-profile-") as tmp:
            session = open_session(
                self.artifact,
                self.variant.mode,
                threads=self.threads,
                device=self.session_device,
                profile_prefix=str(Path(tmp) / "ort-profile"),
                provider=self.variant.details.get("provider"),
                provider_options=self.provider_options(),
            )
            host = native_input.cpu().numpy() if isinstance(native_input, torch.Tensor) else native_input
            feed = {self.input_name: host}
            walls = []
            for step in range(WARMUP_CALLS + iterations):
                start = time.perf_counter()
                session.run([self.output_name], feed)
                if step >= WARMUP_CALLS:
                    walls.append((time.perf_counter() - start) * 1e3)
            events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
            del session
        layers = OnnxLayerMap(onnx.load(str(self.artifact)))
        ops = node_times(events, iterations, layers)
        notes = []
        if any(p != "CPUExecutionProvider" for p in self.session.get_providers()):
            notes.append("node times on a GPU provider are ONNX Runtime's host-side kernel times")
        return RawProfile(
            profiler="ONNX Runtime profiling (enable_profiling), node names mapped to the exported layers",
            iterations=iterations,
            wall_ms=walls,
            ops=ops,
            notes=notes,
        )

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        from qbench.artifacts import onnx as onnx_format

        options = self.session.get_session_options() if self.session is not None else None
        return {
            **super().describe(),
            "providers": self.session.get_providers() if self.session is not None else None,
            "intra_op_num_threads": options.intra_op_num_threads if options else None,
            "inter_op_num_threads": options.inter_op_num_threads if options else None,
            "graph_optimization_level": onnx_format.GRAPH_OPTIMIZATION,
            "session_config": dict(onnx_format.SESSION_CONFIG),
            "input_dtype": np.dtype(self.input_dtype).name,
            **(
                {"tf32": self.provider_options().get("use_tf32", "provider default (on)")}
                if self.cuda
                else {}
            ),
            "onnxruntime": ort.__version__,
        }


def _precision(kind: str, args: dict[str, Any]) -> str | None:
    def first(key: str) -> str | None:
        shapes = args.get(key) or [{}]
        name = next(iter(shapes[0]), None) if isinstance(shapes[0], dict) else None
        return _ORT_TYPES.get(name, name)

    if kind == "quantize":
        return conversion_precision(kind, first("input_type_shape"))
    if kind == "dequantize":
        return conversion_precision(kind, first("output_type_shape"))
    return first("input_type_shape")


def node_times(events: list[dict[str, Any]], iterations: int, layers: Any) -> list[OpTime]:
    """The ``<node>_kernel_time`` events of the last ``iterations`` runs, per layer and op type."""
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[-iterations:]
    starts = [start for start, _ in runs]
    calls: list[list[tuple[dict[str, Any], str | None]]] = [[] for _ in runs]
    for event in sorted(events, key=lambda e: e.get("ts", 0)):  # execution order: the rows' order
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        call = bisect.bisect_right(starts, event["ts"]) - 1
        if call < 0 or event["ts"] > runs[call][1]:
            continue  # a warm-up run
        op_type = event.get("args", {}).get("op_name", "?")
        calls[call].append((event, layers.layer(event["name"], op_type)))
    ops: dict[tuple[str, str, str], OpTime] = {}
    for call, placed in enumerate(calls):
        for i, (event, layer) in enumerate(placed):
            args = event.get("args", {})
            op_type = args.get("op_name", "?")
            kind = op_kind(op_type)
            if kind == "compute" and op_type == "Transpose" and layers.inserted(event["name"]):
                kind = (
                    "layout"  # a transpose a layout optimizer added (NCHW <-> NHWC), not one of the model's
                )
            layer = layer or _neighbour(placed, i, before_first=op_type == "ReorderOutput")
            layer = layer or event["name"].removesuffix("_kernel_time")
            key = (layer, op_type, kind)
            if key not in ops:
                ops[key] = OpTime(
                    layer, op_type, [0.0] * iterations, kind=kind, precision=_precision(kind, args)
                )
            ops[key].add(call, event["dur"] / 1e3)
    return list(ops.values())


def _neighbour(placed: list[tuple[dict[str, Any], str | None]], i: int, before_first: bool) -> str | None:
    """The layer of the nearest mapped node after ``i`` (before it, first, for a ReorderOutput)."""
    after = (layer for _, layer in placed[i + 1 :] if layer)
    before = (layer for _, layer in reversed(placed[:i]) if layer)
    first, second = (before, after) if before_first else (after, before)
    return next(first, None) or next(second, None)
