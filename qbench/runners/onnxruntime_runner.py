"""ONNX Runtime runner: one InferenceSession per variant (qbench.artifacts.onnx), thread counts
set and recorded.

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
        self.session = self.load_artifact()
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.output_name = self.session.get_outputs()[0].name
        self.input_dtype = np.float16 if model_input.type == "tensor(float16)" else np.float32

    def prepare(self, batch: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=self.input_dtype)

    def infer(self, native_input: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: native_input})[0]

    def to_logits(self, output: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(output, dtype=np.float32))

    def close(self) -> None:
        self.session = None

    def profile(self, native_input: np.ndarray, iterations: int) -> RawProfile:
        import onnx

        from qbench.artifacts.onnx import open_session
        from qbench.runners._onnx_layers import OnnxLayerMap

        with tempfile.TemporaryDirectory(prefix="qbench-ort-profile-") as tmp:
            session = open_session(
                self.artifact,
                self.variant.mode,
                threads=self.threads,
                device=self.device,
                profile_prefix=str(Path(tmp) / "ort-profile"),
            )
            feed = {self.input_name: native_input}
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
