"""Per-layer profiles (``bench --profile``): a few calls under the runner's own profiler, after the
timed loop, at the smallest and the largest batch size of the sweep.

The runner reports operator times tagged with the model's layers
(``Runner.profile`` -> ``RawProfile``); here they become the recorded rows: one row per layer
and kind (compute, quantize, dequantize, layout), its time the sum of its operators' per-call
medians (the median keeps one call disturbed by a neighbour on a shared machine out of the
rows). The rows are set against the timed loop's median latency of the same process; what no
layer accounts for is the overhead (``LayerProfile.overhead_ms``).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from qbench.records import LatencyStats, LayerProfile, LayerTime, ProfileOp
from qbench.runners._profiling import ProfilerUnavailable, RawProfile

# profiled calls: enough for a per-call median, bounded in time for a slow model or batch
PROFILE_SECONDS = 1.0
MIN_ITERATIONS, MAX_ITERATIONS = 3, 20


def profiled_batch_sizes(batch_sizes: list[int]) -> list[int]:
    """The smallest and the largest batch size of the sweep (one when they are equal)."""
    return sorted({min(batch_sizes), max(batch_sizes)}) if batch_sizes else []


def iterations_for(median_ms: float) -> int:
    """About PROFILE_SECONDS of profiled calls, at least MIN_ITERATIONS and at most MAX_ITERATIONS."""
    if median_ms <= 0:
        return MAX_ITERATIONS
    return max(MIN_ITERATIONS, min(MAX_ITERATIONS, int(PROFILE_SECONDS * 1e3 / median_ms)))


def summarize(raw: RawProfile, batch_size: int, median_ms: float) -> LayerProfile:
    """The recorded profile: rows per (layer, kind) in execution order, their sum and the overhead."""
    iterations = max(raw.iterations, 1)
    grouped: dict[tuple[str, str], list[tuple[ProfileOp, str | None]]] = {}
    for op in raw.ops:
        per_call = ProfileOp(op_type=op.op_type, calls=op.calls / iterations, ms=statistics.median(op.ms))
        grouped.setdefault((op.layer, op.kind), []).append((per_call, op.precision))
    rows = []
    for (layer, kind), ops in grouped.items():
        ops.sort(key=lambda item: -item[0].ms)
        rows.append(
            LayerTime(
                layer=layer,
                kind=kind,  # type: ignore[arg-type]  # runners use records.profile.LayerKind's names
                precision=next((p for _, p in ops if p), None),
                ms=sum(op.ms for op, _ in ops),
                share=0.0,
                ops=[op for op, _ in ops],
            )
        )
    total = sum(row.ms for row in rows)
    for row in rows:
        row.share = row.ms / total if total > 0 else 0.0
    return LayerProfile(
        batch_size=batch_size,
        profiler=raw.profiler,
        iterations=raw.iterations,
        median_ms=median_ms,
        profiled_ms=statistics.median(raw.wall_ms) if raw.wall_ms else float("nan"),
        layer_sum_ms=total,
        overhead_ms=median_ms - total,
        layers=rows,
        notes=list(raw.notes),
    )


def profile_sweep(
    runner: Any, batch: Callable[[int], Any], latency: list[LatencyStats]
) -> tuple[list[LayerProfile], list[str]]:
    """Profile ``runner`` at the smallest and largest measured batch size; ``batch(bs)`` gives the
    runner's prepared input. Returns the profiles and notes for the result (never raises for a
    profiler that fails: the timing already measured stands)."""
    measured = {s.batch_size: s for s in latency}
    profiles, notes = [], []
    for batch_size in profiled_batch_sizes(list(measured)):
        stats = measured[batch_size]
        try:
            raw = runner.profile(batch(batch_size), iterations_for(stats.median_ms))
        except ProfilerUnavailable as exc:
            return [], [f"per-layer profile: n/a ({exc})"]
        except Exception as exc:  # a profiler failure costs the profile, not the measurement
            notes.append(f"per-layer profile at batch {batch_size} failed: {type(exc).__name__}: {exc}"[:300])
            continue
        profiles.append(summarize(raw, batch_size, stats.median_ms))
    return profiles, notes
