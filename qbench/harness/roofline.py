"""Roofline of each measured batch size: how close a variant runs to what this machine allows.

Per call of batch size ``b``:

- bytes moved = the weights once (in the variant's stored precision) + ``b`` x the activations
  each conv, linear and pooling layer reads and writes (in the variant's activation precision).
  Element-wise layers (ReLU, batch norm, dropout, flatten) count as fused or in place: the bytes
  are the compulsory traffic, a lower bound, as a roofline wants;
- operations = 2 x multiply-accumulates x ``b`` (the model's ``flops`` count MACs);
- intensity = operations / bytes; the bound = min(peak of the variant's arithmetic precision,
  intensity x memory bandwidth); ``memory`` or ``compute`` says which roof applies;
- achieved = operations / median latency, and its fraction of the bound; equivalently the
  fastest the call could run, max(bytes / bandwidth, operations / peak), over the median;
- the weight-streaming floor = weight bytes / bandwidth: no batch-1 call can beat it, and the
  median latency is given as a multiple of it.

The peak of a precision is the best any measured library reached on this machine (see
qbench.harness.limits); the record names which one. Everything but :func:`annotate` and
:func:`activation_elements` is arithmetic on records, so it is tested on hand-computed cases.
"""

from __future__ import annotations

import math
import re
from typing import Any

from qbench.harness import efficiency
from qbench.records import (
    BenchResult,
    DeviceLimits,
    LatencyStats,
    ModelFacts,
    Roofline,
    RooflinePoint,
    VariantRecord,
)

OPS_PER_MAC = 2
BYTES_PER_ELEMENT = {
    "fp32": 4.0,
    "float32": 4.0,
    "fp16": 2.0,
    "float16": 2.0,
    "half": 2.0,
    "bf16": 2.0,
    "bfloat16": 2.0,
    "int8": 1.0,
    "uint8": 1.0,
    "qint8": 1.0,
    "quint8": 1.0,
    "int4": 0.5,
}
_ARITHMETIC = {"int8": "int8", "uint8": "int8", "qint8": "int8", "quint8": "int8"}
_ARITHMETIC.update({"bf16": "bf16", "bfloat16": "bf16", "fp16": "fp16", "float16": "fp16", "half": "fp16"})
CONVENTION = (
    "bytes per call = weights once (stored precision) + batch x activations each conv/linear/pooling "
    "layer reads and writes (activation precision; element-wise layers taken as fused); operations = "
    "2 x MACs x batch; bound = min(peak of the precision, intensity x read bandwidth); fraction = "
    "achieved / bound, achieved from the median latency; floor = weight bytes / bandwidth"
)
# the layers whose inputs and outputs are compulsory activation traffic
_MOVING_LAYERS = ("Conv", "Linear", "Pool")


def precision_token(text: str | None) -> str | None:
    """'int8 (Linear only; ...)' -> 'int8'; 'fp32, quantized to uint8 ...' -> 'fp32'."""
    if not text:
        return None
    match = re.match(r"[a-z0-9]+", text.strip().lower())
    return match.group(0) if match else None


def arithmetic_precision(variant: VariantRecord) -> str:
    """The precision the variant computes in, which picks its compute roof: its activations'."""
    token = precision_token(variant.activations) or precision_token(variant.dtype) or "fp32"
    return _ARITHMETIC.get(token, "fp32")


def activation_bytes_per_element(variant: VariantRecord) -> tuple[float, str]:
    token = precision_token(variant.activations) or precision_token(variant.dtype) or "fp32"
    return BYTES_PER_ELEMENT.get(token, 4.0), token if token in BYTES_PER_ELEMENT else "fp32"


def weight_bytes(variant: VariantRecord, params: int, artifact_bytes: int | None) -> tuple[int, str]:
    """Parameters x bytes of the stored precision when the variant stores one precision; the
    artifact on disk when the record names a mix (e.g. 'int8 (Linear only; convolutions stay fp32)')."""
    text = (variant.weights or variant.dtype or "").strip().lower()
    if text in BYTES_PER_ELEMENT:
        size = BYTES_PER_ELEMENT[text]
        unit = "byte" if size == 1 else "bytes"
        return int(params * size), f"{params:,} parameters x {size:g} {unit} ({text})"
    if artifact_bytes:
        return (
            artifact_bytes,
            f"the artifact on disk ({artifact_bytes:,} bytes: weights stored as {text or 'recorded'})",
        )
    return params * 4, f"{params:,} parameters x 4 bytes (no stored precision recorded: fp32 assumed)"


def point(
    batch_size: int,
    median_ms: float,
    macs_per_image: int,
    weight_bytes: int,
    activation_bytes_per_image: int,
    peak_rate: float | None,
    bandwidth_gbytes_per_s: float,
) -> RooflinePoint:
    """One batch size against the roofs; rates in G operations per second."""
    bytes_per_call = weight_bytes + batch_size * activation_bytes_per_image
    ops = OPS_PER_MAC * macs_per_image * batch_size
    intensity = ops / bytes_per_call if bytes_per_call else math.inf
    memory_roof = intensity * bandwidth_gbytes_per_s
    if peak_rate is not None and peak_rate <= memory_roof:
        bound_rate, bound = peak_rate, "compute"
    else:
        bound_rate, bound = memory_roof, "memory"
    seconds = median_ms / 1e3
    achieved = ops / seconds / 1e9 if seconds > 0 else math.nan
    floor_ms = weight_bytes / (bandwidth_gbytes_per_s * 1e9) * 1e3
    return RooflinePoint(
        batch_size=batch_size,
        bytes_per_call=bytes_per_call,
        ops_per_call=ops,
        intensity=intensity,
        bound_rate=bound_rate,
        bound=bound,  # type: ignore[arg-type]
        achieved_rate=achieved,
        fraction=achieved / bound_rate if bound_rate else math.nan,
        bound_ms=ops / bound_rate / 1e6 if bound_rate else math.nan,
        over_floor=median_ms / floor_ms if floor_ms else math.nan,
    )


def build(
    variant: VariantRecord,
    facts: ModelFacts,
    latency: list[LatencyStats],
    device_limits: DeviceLimits,
    artifact_bytes: int | None = None,
) -> Roofline | None:
    """The roofline of a variant's latencies on a device; None without a bandwidth to compare with."""
    bw = device_limits.bandwidth
    if bw is None or not bw.gbytes_per_s:
        return None
    precision = arithmetic_precision(variant)
    weights_text = (variant.weights or "").lower()
    mixed = "only" in weights_text or "," in (variant.activations or "")
    if mixed:  # a roof must bound every layer: the fastest precision the variant computes in
        candidates = {precision, _ARITHMETIC.get(precision_token(weights_text) or "", precision)}
        precision = max(candidates, key=lambda p: getattr(device_limits.peak(p), "rate", 0.0) or 0.0)
    peak = device_limits.peak(precision)
    w_bytes, w_method = weight_bytes(variant, facts.total_params, artifact_bytes)
    elem_bytes, act_dtype = activation_bytes_per_element(variant)
    notes = []
    if facts.activation_elements is None:
        notes.append("activation traffic not counted (the model facts predate it): weights only")
    act_elements = facts.activation_elements or 0
    act_bytes = int(act_elements * elem_bytes)
    if mixed:
        notes.append(
            f"mixed precision ({variant.weights}; activations {variant.activations}): the {precision} "
            "peak, the fastest of its precisions here, is used as the compute roof of every layer"
        )
    cache = bw.cache_bytes
    if cache and w_bytes <= cache:
        notes.append(
            f"the weights ({w_bytes / 2**20:.1f} MiB) fit in the {cache / 2**20:.0f} MiB last-level cache: "
            "back-to-back calls can read them from cache rather than memory, so small batches may pass "
            "the memory roof (fractions above 100%, latency below the weight floor)"
        )
    if peak is None:
        notes.append(f"no {precision} peak was measured on {device_limits.device}: memory roof only")
    roof = Roofline(
        device=device_limits.device,
        precision=precision,
        unit="GOP/s" if precision == "int8" else "GFLOP/s",
        peak_rate=peak.rate if peak else None,
        peak_method=_peak_method(peak) if peak else "n/a (not measured)",
        bandwidth_gbytes_per_s=bw.gbytes_per_s,
        bandwidth_method=f"{bw.method}; {bw.library}, {bw.threads} threads, {bw.buffer_bytes / 2**20:.0f} MiB",
        weight_bytes=w_bytes,
        weight_bytes_method=w_method,
        activation_bytes_per_image=act_bytes,
        activation_method=(
            f"{act_elements:,} elements read + written by conv/linear/pooling layers per image x "
            f"{elem_bytes:g} {'byte' if elem_bytes == 1 else 'bytes'} ({act_dtype})"
        ),
        floor_ms=w_bytes / (bw.gbytes_per_s * 1e9) * 1e3,
        knee_batch_size=efficiency.knee(latency),
        limits=device_limits,
        convention=CONVENTION,
        notes=notes,
    )
    refresh_points(roof, facts.flops, latency)
    return roof


def refresh_points(roof: Roofline, macs_per_image: int, latency: list[LatencyStats]) -> Roofline:
    """(Re)compute the points from the latencies, e.g. after repeats were merged."""
    roof.points = [
        point(
            s.batch_size,
            s.median_ms,
            macs_per_image,
            roof.weight_bytes,
            roof.activation_bytes_per_image,
            roof.peak_rate,
            roof.bandwidth_gbytes_per_s,
        )
        for s in sorted(latency, key=lambda s: s.batch_size)
        if s.median_ms == s.median_ms  # NaN: not measured
    ]
    roof.knee_batch_size = efficiency.knee(latency)
    return roof


def refresh(result: BenchResult) -> None:
    """Recompute ``result.roofline``'s points from ``result.latency`` (call after merging repeats)."""
    if result.roofline is not None and result.model is not None:
        refresh_points(result.roofline, result.model.flops, result.latency)


def _peak_method(peak: Any) -> str:
    shape = "x".join(str(d) for d in peak.shape)
    return (
        f"{peak.op}, {peak.library}, {shape}, {peak.threads} threads, median of {peak.repetitions} calls"
        + (f" ({peak.emulated})" if peak.emulated else "")
    )


def annotate(result: BenchResult) -> None:
    """Set ``result.roofline`` against this machine's limits, cached per machine fingerprint and
    measured once when missing (that bench then takes a few seconds longer, and says so)."""
    from qbench.harness import limits as machine_limits

    if not result.ok or result.model is None or result.variant is None:
        return
    try:
        how = machine_limits.bench_mode()
        if how == "off":
            result.notes.append(f"roofline: n/a (not measured: {machine_limits.BENCH_ENV}=off)")
            return
        limits, measured_now = machine_limits.obtain(result.env, quick=how == "quick")
    except Exception as exc:  # the roofline is an annotation: never fail the bench for it
        result.notes.append(f"roofline: n/a (this machine's limits could not be measured: {exc})")
        return
    if measured_now:
        result.notes.append(
            f"machine limits measured now in {limits.seconds:.0f} s (first bench with this machine "
            f"fingerprint); cached in {machine_limits.cache_path(limits.fingerprint)}"
        )
    device_limits = limits.for_device(result.device)
    if device_limits is None:
        result.notes.append(f"roofline: n/a (no limits measured for {result.device})")
        return
    result.roofline = build(result.variant, result.model, result.latency, device_limits, result.size_bytes)
    if result.roofline is None:
        result.notes.append(f"roofline: n/a (no memory bandwidth measured for {result.device})")
        return
    result.roofline.limits_fingerprint = limits.fingerprint
    result.roofline.limits_measured = limits.measured + (" (quick measurement)" if limits.quick else "")


def activation_elements(model: Any, input_size: int) -> int:
    """Elements read plus written per image by the model's conv, linear and pooling layers,
    from one 1-image forward pass with hooks (inputs as the layers actually receive them)."""
    import torch

    from qbench.baselines.summary import probe_leaves

    total = 0

    def hook(module: Any, args: tuple, out: Any) -> None:
        nonlocal total
        inputs = [a for a in args if isinstance(a, torch.Tensor)]
        outputs = [out] if isinstance(out, torch.Tensor) else []
        total += sum(t.numel() for t in inputs) + sum(t.numel() for t in outputs)

    probe_leaves(model, input_size, hook, lambda m: any(k in type(m).__name__ for k in _MOVING_LAYERS))
    return total
