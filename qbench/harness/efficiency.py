"""Achieved compute rate per batch size and the batch-size knee.

The model's ``flops`` (qbench.baselines.summary) count multiply-accumulates, as the reference
report does. A MAC is two operations, so the achieved rate is ``2 x MACs x images/s``; the
record says so (``convention``) to keep it comparable with vendor peak GFLOP/s figures,
which also count a fused multiply-add as two. Integer variants report GOP/s.
"""

from __future__ import annotations

from typing import Any

from qbench.harness.result import LatencyStats

KNEE_FRACTION = 0.90
OPS_PER_MAC = 2


def is_integer_variant(variant: dict[str, Any]) -> bool:
    text = " ".join(str(variant.get(k, "")) for k in ("mode", "weights", "activations", "dtype")).lower()
    return "int8" in text or "qint8" in text or "quint8" in text


def annotate(latency: list[LatencyStats], macs: int | None, variant: dict[str, Any]) -> dict[str, Any]:
    """Fill ``gflops`` on each LatencyStats; return the efficiency record of the result."""
    unit = "GOP/s" if is_integer_variant(variant) else "GFLOP/s"
    record: dict[str, Any] = {
        "unit": unit,
        "macs_per_image": macs,
        "ops_per_image": None if macs is None else OPS_PER_MAC * macs,
        "convention": (
            f"{unit} = 2 x MACs per image x throughput_ips / 1e9; the model's 'flops' field counts "
            "MACs (conv and linear multiply-accumulates, as the reference report)"
        ),
        "knee_fraction": KNEE_FRACTION,
        "knee_batch_size": knee(latency),
        "best_throughput_ips": max((s.throughput_ips for s in latency), default=None),
    }
    if macs:
        for s in latency:
            s.gflops = OPS_PER_MAC * macs * s.throughput_ips / 1e9
    return record


def knee(latency: list[LatencyStats], fraction: float = KNEE_FRACTION) -> int | None:
    """Smallest batch size whose throughput reaches ``fraction`` of the best one."""
    valid = [s for s in latency if s.throughput_ips == s.throughput_ips]  # drop NaN
    if not valid:
        return None
    best = max(s.throughput_ips for s in valid)
    return min(s.batch_size for s in valid if s.throughput_ips >= fraction * best)
