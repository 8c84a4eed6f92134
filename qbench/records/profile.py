"""Per-layer profiles (``qbench bench --profile``): where one call's time goes, layer by layer.

Recorded per profiled batch size in ``BenchResult.profiles``. The layer times come from the
runner's own profiler (torch.profiler, ONNX Runtime's profiling output, TensorRT's IProfiler)
over a few calls made *after* the timed loop, so the headline latency is never measured with
a profiler attached. The profile is set against that headline: ``median_ms`` is the timed
loop's median in the same process, and ``overhead_ms`` (median minus the per-layer sum) is
the time no layer accounts for: framework dispatch, Python, memory management, the
runtime's glue. A negative overhead means the profiler's own cost inflated the layer times
beyond the unprofiled latency (typical for a tiny model at batch 1); it is shown, not hidden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from qbench.records.base import Record

# compute: the layer's own arithmetic; quantize / dequantize: conversions between float and
# integer tensors; layout: reorders and transposes between memory layouts (NCHW, NHWC, NCHWc)
LayerKind = Literal["compute", "quantize", "dequantize", "layout"]
# |overhead| / median above this: the per-layer sum does not account for the measured latency
AGREEMENT_TOLERANCE = 0.10


@dataclass
class ProfileOp(Record):
    """One operator type inside a layer row, per inference call."""

    op_type: str  # aten::conv2d, quantized::conv2d_relu, QLinearConv, ReorderOutput, ...
    calls: float  # occurrences per inference call
    ms: float  # milliseconds per inference call


@dataclass
class LayerTime(Record):
    """One row of a profile: a model layer's time of one kind, per inference call."""

    DERIVED = ("op_types",)

    layer: str  # the model's layer name (torch module path, e.g. features.0); "(model)" for its own forward
    kind: LayerKind
    precision: str | None  # float32, int8, float32→int8, ...; None when the profiler cannot tell
    ms: float  # milliseconds per inference call
    share: float  # fraction of the per-layer sum (0..1)
    ops: list[ProfileOp] = field(default_factory=list)

    @property
    def op_types(self) -> list[str]:
        return [op.op_type for op in self.ops]


@dataclass
class LayerProfile(Record):
    """The profile of one variant at one batch size."""

    DERIVED = ("within_tolerance",)

    batch_size: int
    profiler: str  # which profiler and how layers were named
    iterations: int  # profiled calls (after warm-up calls with the profiler attached)
    median_ms: float  # the timed loop's median latency in the same process (no profiler)
    profiled_ms: float  # median wall time of a profiled call (profiler attached)
    layer_sum_ms: float  # the sum of the rows
    overhead_ms: float  # median_ms - layer_sum_ms: framework/unattributed (negative: profiler cost)
    layers: list[LayerTime] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def within_tolerance(self) -> bool:
        """The per-layer sum lies within AGREEMENT_TOLERANCE of the measured latency."""
        return self.median_ms > 0 and abs(self.overhead_ms) <= AGREEMENT_TOLERANCE * self.median_ms
