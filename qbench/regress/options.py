"""What regress compares (run-level statistics, defined as in the reports) and its thresholds."""

from __future__ import annotations

import math
from dataclasses import dataclass

from qbench.errors import QBenchError

BASELINE_KIND = "qbench-regress-baseline"
VERDICT_KIND = "qbench-regress-verdict"

# The unit of evidence is one process run, and a run records its median (LatencyStats.repeats);
# throughput is batch / median, so both metrics gate on the same per-run numbers.
METRICS = ("median", "throughput")


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
    alpha: float = 0.05  # one-sided: the ratio's bootstrap interval is the central 1 - 2 alpha
    min_runs: int = 3  # process runs each side needs before a verdict is more than a guess
    max_accuracy_drop: float = 0.5  # percentage points of top-1
    allow_missing: bool = False  # a baseline variant absent, failed or skipped now passes
    accuracy_gate: bool = True
    fail_inconclusive: bool = False

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise QBenchError(
                f"--metric {self.metric!r} cannot be gated run by run; choose {' or '.join(METRICS)}."
            )
        if not (math.isfinite(self.threshold) and self.threshold >= 0):
            raise QBenchError("--threshold must be a non-negative percentage such as '10%'.")
        if not (math.isfinite(self.min_abs_ms) and self.min_abs_ms >= 0):
            raise QBenchError("--min-abs-ms must be zero or a positive number of milliseconds.")
        if not (0 < self.alpha < 0.5):
            raise QBenchError(f"--alpha {self.alpha} must lie strictly between 0 and 0.5, e.g. 0.05.")
        if self.min_runs < 2:
            raise QBenchError("--min-runs must be 2 or more: one run shows no between-run noise.")
        if not (math.isfinite(self.max_accuracy_drop) and self.max_accuracy_drop >= 0):
            raise QBenchError("--max-accuracy-drop must be zero or a positive number of percentage points.")
