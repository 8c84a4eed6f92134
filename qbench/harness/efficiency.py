"""Achieved compute rate per batch size and the batch-size knee.

The model's ``flops`` (qbench.baselines.summary) count multiply-accumulates, as the reference
report does. A MAC is two operations, so the achieved rate is ``2 x MACs x images/s``; the
record says so (``convention``) to keep it comparable with vendor peak GFLOP/s figures,
which also count a fused multiply-add as two. The unit is the one the variant's exporter
declared (``VariantRecord.ops_unit``: GOP/s for integer arithmetic, GFLOP/s otherwise).
"""

from __future__ import annotations

from qbench.records import Efficiency, LatencyStats

KNEE_FRACTION = 0.90
OPS_PER_MAC = 2


def annotate(latency: list[LatencyStats], macs: int | None, unit: str) -> Efficiency:
    """Fill ``gflops`` (a rate in ``unit``) on each LatencyStats; return the result's Efficiency."""
    if macs:
        for s in latency:
            s.gflops = OPS_PER_MAC * macs * s.throughput_ips / 1e9
    return Efficiency(
        unit=unit,
        macs_per_image=macs,
        ops_per_image=None if macs is None else OPS_PER_MAC * macs,
        convention=(
            f"{unit} = 2 x MACs per image x throughput_ips / 1e9; the model's 'flops' field counts "
            "MACs (conv and linear multiply-accumulates, as the reference report)"
        ),
        knee_fraction=KNEE_FRACTION,
        knee_batch_size=knee(latency),
        best_throughput_ips=max((s.throughput_ips for s in latency), default=None),
    )


def knee(latency: list[LatencyStats], fraction: float = KNEE_FRACTION) -> int | None:
    """Smallest batch size whose throughput reaches ``fraction`` of the best one."""
    valid = [s for s in latency if s.throughput_ips == s.throughput_ips]  # drop NaN
    if not valid:
        return None
    best = max(s.throughput_ips for s in valid)
    return min(s.batch_size for s in valid if s.throughput_ips >= fraction * best)
