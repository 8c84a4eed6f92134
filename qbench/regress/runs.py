"""The run-level model: one process run is one piece of evidence.

Samples inside one process are correlated (placement, frequency, cache state and neighbours are
fixed for its lifetime), so a test on them mistakes a slower *process* for a slower *model*.
Each side instead contributes its per-run medians (``LatencyStats.repeats``, one per
``--repeats`` run); the comparison is the ratio of the medians of those run medians, with a
percentile bootstrap confidence interval over runs, and the baseline's own spread between its
runs as the noise a slowdown has to clear.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

from qbench.records import LatencyStats

BOOTSTRAP_RESAMPLES = 4999
BOOTSTRAP_SEED = 0  # fixed: the same records always give the same verdict


def run_medians(stats: LatencyStats) -> list[float]:
    """The median of each process run: the repeats when there were several, else the one median."""
    values = stats.repeats if len(stats.repeats) >= 2 else [stats.median_ms]
    return [v for v in values if math.isfinite(v) and v > 0]


@dataclass
class RunComparison:
    """current / baseline of the median of run medians (ms per batch: above 1 is slower)."""

    n_base: int
    n_cur: int
    base_ms: float  # median of the run medians
    cur_ms: float
    ratio: float
    ci_low: float | None  # bootstrap interval of the ratio; None with fewer than 2 runs a side
    ci_high: float | None
    noise: float  # the baseline's slowest run above its median, as a fraction (0.03 = 3 %)
    fast_noise: float  # the baseline's fastest run below its median, as a fraction


def _ratio_of_medians(base: np.ndarray, cur: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(cur, axis=axis) / np.median(base, axis=axis)


def compare_runs(base: list[float], cur: list[float], alpha: float) -> RunComparison:
    """The ratio of medians of run medians and its central (1 - 2 alpha) bootstrap interval."""
    b_med, c_med = statistics.median(base), statistics.median(cur)
    ratio = c_med / b_med
    noise, fast_noise = max(base) / b_med - 1.0, 1.0 - min(base) / b_med
    low = high = None
    if len(base) >= 2 and len(cur) >= 2:
        from scipy.stats import bootstrap

        res = bootstrap(
            (np.asarray(base), np.asarray(cur)),
            _ratio_of_medians,
            n_resamples=BOOTSTRAP_RESAMPLES,
            confidence_level=1.0 - 2.0 * alpha,
            method="percentile",  # BCa is undefined when runs tie, which medians of short runs do
            vectorized=True,
            random_state=np.random.default_rng(BOOTSTRAP_SEED),
        )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return RunComparison(len(base), len(cur), b_med, c_med, ratio, low, high, noise, fast_noise)
