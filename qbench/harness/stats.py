"""Statistics of timing samples, and the merge of several repeats of one sweep.

Conventions (recorded in the result's ``settings.statistics``):

- ``std`` is the sample standard deviation (ddof=1); ``cv = std / mean``.
- Percentiles use numpy's default linear interpolation; ``iqr = p75 - p25``.
- A percentile p is *reliable* only when at least ``TAIL_SAMPLES`` samples lie beyond it,
  i.e. ``n * (1 - p) >= 10``: p90 needs 100 samples, p95 200, p99 1,000. Below that the
  percentile is little more than the maximum (with 100 samples p99 interpolates between the
  two largest), so it is listed in ``unreliable_percentiles``.
- ``throughput = batch x iterations / timed wall time`` (the whole loop, sync included), so
  it is the rate a caller would see back to back, not 1/median.
- ``median_ci_low_ms`` / ``median_ci_high_ms``: a distribution-free 95% confidence interval of
  the median from order statistics. The number of values below the true median is
  Binomial(n, 1/2), so the k-th and (n-k+1)-th smallest values bracket it with probability
  ``1 - 2 * P(B < k)``; k is the largest rank that keeps that at 95% or more (for n = 100:
  the 40th and 61st values). Below ``MIN_CI_VALUES`` values no pair reaches 95%: NaN.
  With ``--repeats R`` the unit is one process run: when ``R >= MIN_CI_VALUES`` the interval
  comes from the R per-repeat medians (so run-to-run variation is in it), otherwise from the
  pooled samples, and ``settings.statistics["median_ci"]`` says which.
- ``noisy``: the *robust* coefficient of variation ``iqr / (IQR_PER_SIGMA x median)`` is above
  the threshold (``--cv-threshold``). For normally distributed samples it equals ``std / mean``
  (the IQR of a normal distribution is 1.349 sigma), so the threshold keeps its meaning, but
  the quartiles ignore the few slow outliers (a page fault, another process waking up) that
  made ``cv`` flag nearly every stable CPU measurement: one outlier among 100 cannot move it,
  while a spread-out or bimodal measurement still raises it. ``cv`` itself stays std/mean. It
  is computed from the record's own ``iqr_ms`` and ``median_ms`` (with repeats, the median of
  the run medians), so a reader can check the flag.
"""

from __future__ import annotations

import statistics as _st

import numpy as np
from scipy.stats import binom

from qbench.harness.timing import TimingRun
from qbench.records import HostLatency, LatencyStats

TAIL_SAMPLES = 10
PERCENTILES = {"p90": 90.0, "p95": 95.0, "p99": 99.0}
DEFAULT_CV_THRESHOLD = 0.10
# the interquartile range of a normal distribution in standard deviations (2 x 0.6745)
IQR_PER_SIGMA = 1.349
CI_LEVEL = 0.95
# the smallest n whose extreme order statistics cover the median with 95%: 1 - 2 / 2**6 = 0.969
MIN_CI_VALUES = 6

_CI_RULE = (
    f"{CI_LEVEL:.0%} distribution-free confidence interval of the median from order statistics "
    f"(Binomial(n, 1/2) ranks; NaN below {MIN_CI_VALUES} values)"
)


def conventions(repeats: int = 1) -> dict[str, str]:
    """The statistics' definitions, as recorded in ``settings.statistics`` of a result."""
    if repeats >= MIN_CI_VALUES:
        ci_source = f"{_CI_RULE}, computed from the {repeats} per-repeat medians"
    elif repeats > 1:
        ci_source = f"{_CI_RULE}, computed from the pooled samples ({repeats} repeats < {MIN_CI_VALUES})"
    else:
        ci_source = f"{_CI_RULE}, computed from the samples"
    return {
        "median": "median of the samples; with repeats, the median of the per-repeat medians",
        "median_ci": ci_source,
        "std": "sample standard deviation (ddof=1)",
        "percentiles": "numpy linear interpolation",
        "percentile_reliability": f"p is reliable when n*(1-p) >= {TAIL_SAMPLES} (p99 needs 1000 samples)",
        "throughput": "batch x iterations / timed wall time of the loop (sync included)",
        "per_image_ms": "median_ms / batch_size",
        "noisy": (
            f"robust cv = iqr / ({IQR_PER_SIGMA} x median) above the threshold (equals std/mean for "
            "normal samples; single outliers do not move it)"
        ),
    }


def median_ci_ranks(n: int, level: float = CI_LEVEL) -> tuple[int, int] | None:
    """1-based ranks (k, n-k+1) of the order statistics bracketing the median, or None if n is too small."""
    # P(B <= k-1) <= (1-level)/2 for B ~ Binomial(n, 1/2); binom.ppf is the smallest k with P(B <= k) >= q
    k = int(binom.ppf((1 - level) / 2, n, 0.5)) if n > 0 else 0
    if k >= 1 and binom.cdf(k, n, 0.5) <= (1 - level) / 2:
        k += 1  # the cdf lands exactly on the tail mass: one rank further in still covers
    if k < 1:
        return None
    return k, n - k + 1


def median_ci(values: list[float] | np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """The order-statistic confidence interval of the median of ``values``; NaNs when too few."""
    a = np.sort(np.asarray(values, dtype=np.float64))
    ranks = median_ci_ranks(int(a.size), level)
    if ranks is None:
        return float("nan"), float("nan")
    low, high = ranks
    return float(a[low - 1]), float(a[high - 1])


def robust_cv(iqr_ms: float, median_ms: float) -> float:
    """The IQR-based coefficient of variation the noisy flag uses (see the module docstring)."""
    return iqr_ms / (IQR_PER_SIGMA * median_ms) if median_ms > 0 else 0.0


def unreliable_percentiles(n: int) -> list[str]:
    # in hundredths, so 100 samples at p90 count exactly 10 (floats give 9.999...)
    return [name for name, p in PERCENTILES.items() if n * (100 - p) < TAIL_SAMPLES * 100]


def latency_stats(
    samples_ms: list[float],
    batch_size: int,
    total_s: float,
    *,
    cold_ms: float = float("nan"),
    warmup_iters: int = 0,
    cv_threshold: float = DEFAULT_CV_THRESHOLD,
    sync: str = "none",
    stopped_by: str = "iterations",
) -> LatencyStats:
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no timing samples")
    mean = float(a.mean())
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    p25, p50, p75, p90, p95, p99 = (float(v) for v in np.percentile(a, [25, 50, 75, 90, 95, 99]))
    cv = std / mean if mean > 0 else 0.0
    ci_low, ci_high = median_ci(a)
    return LatencyStats(
        batch_size=batch_size,
        n_samples=int(a.size),
        warmup_iters=warmup_iters,
        cold_ms=cold_ms,
        mean_ms=mean,
        median_ms=p50,
        median_ci_low_ms=ci_low,
        median_ci_high_ms=ci_high,
        std_ms=std,
        min_ms=float(a.min()),
        max_ms=float(a.max()),
        p90_ms=p90,
        p95_ms=p95,
        p99_ms=p99,
        iqr_ms=p75 - p25,
        cv=cv,
        per_image_ms=p50 / batch_size,
        throughput_ips=batch_size * a.size / total_s if total_s > 0 else float("nan"),
        total_s=total_s,
        noisy=robust_cv(p75 - p25, p50) > cv_threshold,
        unreliable_percentiles=unreliable_percentiles(int(a.size)),
        sync=sync,
        samples_ms=[float(v) for v in a],
        stopped_by=stopped_by,
    )


def host_latency(samples_ms: list[float] | None) -> HostLatency | None:
    """The wall-clock summary of a GPU run's calls (None: a CPU run, whose samples are wall time)."""
    if not samples_ms:
        return None
    a = np.asarray(samples_ms, dtype=np.float64)
    p50, p95, p99 = (float(v) for v in np.percentile(a, [50, 95, 99]))
    return HostLatency(
        median_ms=p50,
        mean_ms=float(a.mean()),
        min_ms=float(a.min()),
        max_ms=float(a.max()),
        p95_ms=p95,
        p99_ms=p99,
        samples_ms=[float(v) for v in a],
    )


def from_run(run: TimingRun, batch_size: int, cv_threshold: float = DEFAULT_CV_THRESHOLD) -> LatencyStats:
    result = latency_stats(
        run.samples_ms,
        batch_size,
        run.total_s,
        cold_ms=run.cold_ms,
        warmup_iters=run.warmup_iters,
        cv_threshold=cv_threshold,
        sync=run.sync,
        stopped_by=run.stopped_by,
    )
    result.host = host_latency(run.host_samples_ms)
    return result


def merge_repeats(runs: list[LatencyStats], cv_threshold: float = DEFAULT_CV_THRESHOLD) -> LatencyStats:
    """One batch size measured in R separate runs: pooled statistics, median of medians.

    ``median_ms`` (and ``per_image_ms``) become the median of the R run medians, which
    resists one run disturbed as a whole (another process waking up); its confidence
    interval comes from the run medians when there are enough of them (see the module
    docstring); the other statistics pool all samples; ``repeats`` keeps each run's median
    so the spread stays visible.
    """
    if len(runs) == 1:
        return runs[0]
    pooled = [s for r in runs for s in r.samples_ms]
    merged = latency_stats(
        pooled,
        runs[0].batch_size,
        sum(r.total_s for r in runs),
        cold_ms=runs[0].cold_ms,
        warmup_iters=runs[0].warmup_iters,
        cv_threshold=cv_threshold,
        sync=runs[0].sync,
        # a budget that cut any repeat short is what the pooled samples show
        stopped_by=next((r.stopped_by for r in runs if r.stopped_by == "time-budget"), runs[0].stopped_by),
    )
    merged.iters_requested, merged.warmup_requested = runs[0].iters_requested, runs[0].warmup_requested
    merged.time_budget_s = runs[0].time_budget_s
    merged.warmup_s = sum(r.warmup_s or 0.0 for r in runs)
    medians = [r.median_ms for r in runs]
    merged.median_ms = float(_st.median(medians))
    if len(medians) >= MIN_CI_VALUES:
        merged.median_ci_low_ms, merged.median_ci_high_ms = median_ci(medians)
    merged.per_image_ms = merged.median_ms / merged.batch_size
    merged.noisy = robust_cv(merged.iqr_ms, merged.median_ms) > cv_threshold
    merged.repeats = medians
    if all(r.host is not None for r in runs):
        merged.host = host_latency([s for r in runs for s in r.host.samples_ms])
    merged.gpu = runs[0].gpu  # what the device did in the first run, like the memory figures
    return merged
