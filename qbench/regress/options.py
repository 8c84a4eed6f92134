"""What regress compares (the statistics, defined as in the reports) and its thresholds."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from qbench.errors import QBenchError
from qbench.records import LatencyStats

BASELINE_KIND = "qbench-regress-baseline"
VERDICT_KIND = "qbench-regress-verdict"


def median_throughput_ips(s: LatencyStats) -> float:
    """Images/s at the median latency: the reports' headline throughput."""
    return s.batch_size * 1000.0 / s.median_ms if s.median_ms > 0 else math.nan


# each comparable statistic of one batch size; all but throughput in ms per batch
METRICS: dict[str, Callable[[LatencyStats], float]] = {
    "median": lambda s: s.median_ms,
    "mean": lambda s: s.mean_ms,
    "p90": lambda s: s.p90_ms,
    "p95": lambda s: s.p95_ms,
    "throughput": median_throughput_ips,
}


def parse_threshold(text: str | float) -> float:
    """'10%' -> 0.10, '0.1' -> 0.1; a bare number above 1 is refused as ambiguous."""
    raw = str(text).strip()
    try:
        if raw.endswith("%"):
            value = float(raw[:-1].strip()) / 100.0
        else:
            value = float(raw)
            if value > 1:
                raise QBenchError(
                    f"--threshold {raw} is ambiguous; write a percentage like '{raw}%' or a fraction like 0.1."
                )
    except ValueError:
        raise QBenchError(
            f"--threshold {raw!r} is not a number; write a percentage like '10%' or a fraction like 0.1."
        ) from None
    if not math.isfinite(value) or value < 0:
        raise QBenchError(f"--threshold {raw} must be a non-negative percentage such as '10%'.")
    return value


@dataclass
class RegressOptions:
    metric: str = "median"
    threshold: float = 0.10  # relative, 0.10 = 10 %
    min_abs_ms: float = 0.05
    alpha: float = 0.01
    max_accuracy_drop: float = 0.5  # percentage points of top-1

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise QBenchError(f"--metric {self.metric!r} is unknown; choose one of {', '.join(METRICS)}.")
        if not (math.isfinite(self.threshold) and self.threshold >= 0):
            raise QBenchError("--threshold must be a non-negative percentage such as '10%'.")
        if not (math.isfinite(self.min_abs_ms) and self.min_abs_ms >= 0):
            raise QBenchError("--min-abs-ms must be zero or a positive number of milliseconds.")
        if not (0 < self.alpha < 1):
            raise QBenchError(f"--alpha {self.alpha} must lie strictly between 0 and 1, e.g. 0.01.")
        if not (math.isfinite(self.max_accuracy_drop) and self.max_accuracy_drop >= 0):
            raise QBenchError("--max-accuracy-drop must be zero or a positive number of percentage points.")
