"""What a runner's profiler hands the harness: operator times tagged with the model's layer names.

Each runner drives its own back-end's profiler (``Runner.profile``) and reports every operator
or kernel it saw as an :class:`OpTime`, already mapped to the layer (torch module path) it
belongs to and classified by :func:`op_kind`, so quantize/dequantize steps and layout
conversions (reorders, transposes) become rows of their own in the report. The harness
(``qbench.harness.profile``) groups them into the recorded rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MODEL_LAYER = "(model)"  # ops in the model's own forward (torch.flatten, a reshape), not in a sub-layer
WARMUP_CALLS = 2  # calls with the profiler attached before the profiled ones

# float <-> integer conversions, as torch and ONNX name them
QUANTIZE_OPS = frozenset(
    {
        "aten::quantize_per_tensor",
        "aten::quantize_per_channel",
        "aten::quantize_per_tensor_dynamic",
        "quantized_decomposed::quantize_per_tensor",
        "quantized_decomposed::quantize_per_channel",
        "quantized_decomposed::choose_qparams",
        "QuantizeLinear",
        "DynamicQuantizeLinear",
    }
)
DEQUANTIZE_OPS = frozenset(
    {
        "aten::dequantize",
        "quantized_decomposed::dequantize_per_tensor",
        "quantized_decomposed::dequantize_per_channel",
        "DequantizeLinear",
    }
)
# memory-layout conversions: torch's contiguous copies and oneDNN reorders, ONNX Runtime's NCHWc
# reorders; ONNX Runtime's inserted Transposes (NCHW <-> NHWC) are classified by the runner,
# which knows whether a Transpose was in the model or added by a layout optimizer
LAYOUT_OPS = frozenset(
    {
        "aten::contiguous",
        "aten::to_mkldnn",
        "aten::to_dense",
        "aten::_to_dense",
        "aten::mkldnn_reorder_conv2d_weight",
        "aten::mkldnn_reorder_conv3d_weight",
        "ReorderInput",
        "ReorderOutput",
        "MemcpyToHost",
        "MemcpyFromHost",
    }
)


class ProfilerUnavailable(Exception):
    """This runner (or this artifact on it) offers no per-layer profile; the message says why."""


@dataclass
class OpTime:
    """One operator type of one layer: its time in each profiled call."""

    layer: str  # the model's layer name (torch module path), MODEL_LAYER, or the back-end's own name
    op_type: str
    ms: list[float]  # milliseconds in each profiled call (0 where it did not run)
    calls: int = 0  # occurrences over all profiled calls
    kind: str = "compute"  # compute | quantize | dequantize | layout (records.profile.LayerKind)
    precision: str | None = None

    def add(self, call: int, ms: float) -> None:
        self.ms[call] += ms
        self.calls += 1


@dataclass
class RawProfile:
    """What ``Runner.profile`` returns: the operators and the wall time of each profiled call."""

    profiler: str  # the profiler and how layer names were found
    iterations: int
    wall_ms: list[float]
    ops: list[OpTime] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def op_kind(op_type: str) -> str:
    """compute | quantize | dequantize | layout, by the operator's name."""
    if op_type in QUANTIZE_OPS:
        return "quantize"
    if op_type in DEQUANTIZE_OPS:
        return "dequantize"
    if op_type in LAYOUT_OPS:
        return "layout"
    return "compute"


def conversion_precision(kind: str, float_type: str | None = None) -> str | None:
    """The precision text of a quantize or dequantize row: 'float32→int8', 'int8→float32'."""
    float_type = float_type or "float32"
    if kind == "quantize":
        return f"{float_type}→int8"
    if kind == "dequantize":
        return f"int8→{float_type}"
    return None
