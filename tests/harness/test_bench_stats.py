"""Statistics, repeats, efficiency and the BenchResult record, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qbench.harness import efficiency, stats
from qbench.records import (
    AccuracyStats,
    Agreement,
    BenchOptions,
    BenchResult,
    BenchSettings,
    ClassMetrics,
    Efficiency,
    MemoryStats,
)


def test_latency_stats_match_hand_computed_values():
    s = stats.latency_stats([1.0, 2.0, 3.0, 4.0, 10.0], batch_size=4, total_s=0.05, cold_ms=42.0)
    assert s.n_samples == 5
    assert s.mean_ms == pytest.approx(4.0)
    assert s.median_ms == pytest.approx(3.0)
    # sample std: squared deviations 9+4+1+0+36 = 50, / (5-1) = 12.5
    assert s.std_ms == pytest.approx(math.sqrt(12.5))
    assert (s.min_ms, s.max_ms) == (1.0, 10.0)
    # linear interpolation at rank p/100 * (n-1): p90 -> 3.6 -> 4 + 0.6*6
    assert s.p90_ms == pytest.approx(7.6)
    assert s.p95_ms == pytest.approx(8.8)
    assert s.p99_ms == pytest.approx(9.76)
    assert s.iqr_ms == pytest.approx(4.0 - 2.0)
    assert s.cv == pytest.approx(math.sqrt(12.5) / 4.0)
    assert s.per_image_ms == pytest.approx(3.0 / 4)
    assert s.throughput_ips == pytest.approx(4 * 5 / 0.05)
    assert s.cold_ms == 42.0
    assert s.noisy  # cv = 0.88
    assert s.samples_ms == [1.0, 2.0, 3.0, 4.0, 10.0]


def test_median_ci_from_order_statistics():
    """100 samples: the 40th and 61st smallest bracket the median with >= 95% (binomial ranks)."""
    assert stats.median_ci_ranks(100) == (40, 61)
    assert stats.median_ci_ranks(6) == (1, 6)  # 1 - 2/64 = 96.9 %
    assert stats.median_ci_ranks(5) is None  # 1 - 2/32 = 93.8 %: no pair reaches 95 %
    from scipy.stats import binom

    for n in (6, 10, 37, 100, 1000):
        low, high = stats.median_ci_ranks(n)
        coverage = binom.cdf(high - 1, n, 0.5) - binom.cdf(low - 1, n, 0.5)
        wider_by_one_less = binom.cdf(high - 2, n, 0.5) - binom.cdf(low, n, 0.5)
        assert coverage >= 0.95 > wider_by_one_less, n  # the narrowest symmetric interval that covers

    values = [float(v) for v in np.random.default_rng(0).permutation(np.arange(1, 101))]
    s = stats.latency_stats(values, 1, 1.0)
    assert (s.median_ci_low_ms, s.median_ci_high_ms) == (40.0, 61.0)
    assert s.median_ci_low_ms <= s.median_ms <= s.median_ci_high_ms
    few = stats.latency_stats([1.0, 2.0, 3.0], 1, 1.0)
    assert math.isnan(few.median_ci_low_ms) and math.isnan(few.median_ci_high_ms)


def test_median_ci_with_repeats_uses_run_medians_when_there_are_enough():
    runs = [stats.latency_stats([m, m + 0.5, m + 1.0] * 4, 1, 0.01) for m in (5.0, 1.0, 4.0, 2.0, 6.0, 3.0)]
    merged = stats.merge_repeats(runs)
    assert merged.repeats == [5.5, 1.5, 4.5, 2.5, 6.5, 3.5] and merged.median_ms == 4.0
    assert (merged.median_ci_low_ms, merged.median_ci_high_ms) == (1.5, 6.5)  # ranks 1 and 6 of 6
    assert "6 per-repeat medians" in stats.conventions(repeats=6)["median_ci"]
    few = stats.merge_repeats(runs[:3])  # 3 runs: from the 36 pooled samples (ranks 12 and 25)
    pooled = sorted(v for r in runs[:3] for v in r.samples_ms)
    assert (few.median_ci_low_ms, few.median_ci_high_ms) == (pooled[11], pooled[24])
    assert "pooled samples" in stats.conventions(repeats=3)["median_ci"]


def test_percentile_reliability_rule():
    assert stats.unreliable_percentiles(100) == ["p95", "p99"]
    assert stats.unreliable_percentiles(50) == ["p90", "p95", "p99"]
    assert stats.unreliable_percentiles(200) == ["p99"]
    assert stats.unreliable_percentiles(1000) == []
    # the point of the rule: with 100 samples p99 sits between the two largest samples
    s = stats.latency_stats([float(v) for v in range(1, 101)], 1, 1.0)
    assert s.max_ms - s.p99_ms < 1.0


def test_steady_samples_are_not_noisy():
    s = stats.latency_stats([10.0, 10.1, 9.9, 10.05, 9.95] * 20, 1, 1.0, cv_threshold=0.1)
    assert not s.noisy


def test_one_outlier_among_100_does_not_make_a_stable_measurement_noisy():
    """The noisy rule is the IQR-based robust CV: a single preemption must not flag a stable loop."""
    rng = np.random.default_rng(0)
    steady = [*rng.normal(10.0, 0.2, size=99), 100.0]  # one call hit by a 90 ms stall
    s = stats.latency_stats(steady, 1, 1.0, cv_threshold=0.1)
    assert s.cv > 0.5  # std/mean is dominated by the outlier: the old rule flagged this
    assert stats.robust_cv(s.iqr_ms, s.median_ms) < 0.05
    assert not s.noisy
    # a measurement spread out as a whole, or bimodal, is still noisy
    spread = list(rng.normal(10.0, 2.0, size=100))
    assert stats.latency_stats(spread, 1, 1.0, cv_threshold=0.1).noisy
    bimodal = [10.0] * 50 + [14.0] * 50
    assert stats.latency_stats(bimodal, 1, 1.0, cv_threshold=0.1).noisy
    # for normal samples the robust cv estimates std/mean, so the threshold keeps its meaning
    big = rng.normal(10.0, 0.5, size=20_000)
    q75, q25 = np.percentile(big, [75, 25])
    assert stats.robust_cv(q75 - q25, float(np.median(big))) == pytest.approx(0.05, rel=0.05)
    assert "iqr" in stats.conventions()["noisy"]


def test_noisy_with_repeats_uses_the_recorded_iqr_and_median():
    runs = [stats.latency_stats([m] * 20 + [m * 5], 1, 0.1) for m in (10.0, 10.2, 9.9)]
    merged = stats.merge_repeats(runs, cv_threshold=0.1)
    assert not merged.noisy  # three outliers among 63: the quartiles do not see them
    assert merged.noisy == (stats.robust_cv(merged.iqr_ms, merged.median_ms) > 0.1)
    apart = stats.merge_repeats([stats.latency_stats([m] * 20, 1, 0.1) for m in (10.0, 14.0, 20.0)], 0.1)
    assert apart.noisy  # runs that disagree with each other


def test_repeats_keep_median_of_medians_and_spread():
    runs = [
        stats.latency_stats([1.0, 1.0, 1.0], 2, 0.01),
        stats.latency_stats([3.0, 3.0, 3.0], 2, 0.01),
        stats.latency_stats([2.0, 2.0, 2.0], 2, 0.01),
    ]
    merged = stats.merge_repeats(runs)
    assert merged.repeats == [1.0, 3.0, 2.0]
    assert merged.median_ms == 2.0
    assert merged.per_image_ms == 1.0
    assert merged.n_samples == 9
    assert merged.throughput_ips == pytest.approx(2 * 9 / 0.03)


def test_efficiency_counts_two_ops_per_mac_and_finds_the_knee():
    lat = [
        stats.latency_stats([1.0], 1, 0.001),  # 1,000 img/s
        stats.latency_stats([4.0], 8, 0.004),  # 2,000 img/s
        stats.latency_stats([7.0], 16, 0.007),  # ~2,286 img/s
        stats.latency_stats([13.0], 32, 0.013),  # ~2,462 img/s: best
    ]
    record = efficiency.annotate(lat, 1_000_000, "GFLOP/s")
    assert isinstance(record, Efficiency)
    assert record.unit == "GFLOP/s" and record.ops_per_image == 2_000_000
    assert lat[0].gflops == pytest.approx(2e6 * 1000 / 1e9)
    assert record.knee_batch_size == 16  # 2286 >= 0.9 * 2462, 2000 is not
    # the unit is the exporter's declaration (VariantRecord.ops_unit), passed through as is
    assert efficiency.annotate(lat, 1, "GOP/s").unit == "GOP/s"


def test_bench_result_round_trips(tmp_path):
    result = BenchResult(
        mode="fp32",
        status="ok",
        settings=BenchSettings(options=BenchOptions(), statistics=stats.conventions(), timer="perf_counter"),
        runner="torch",
        latency=[stats.latency_stats([float(v) for v in range(1, 8)], 1, 0.01, cold_ms=5.0)],
        memory=MemoryStats(rss_before_load_mb=10.0, rss_peak_mb=20.0),
        accuracy=AccuracyStats(
            n_images=2,
            top1=50.0,
            top5=100.0,
            loss=0.7,
            per_class=[ClassMetrics(label="0", precision=1.0, recall=0.5, f1=0.66, support=2)],
            confusion=[[1, 1], [0, 0]],
            agreement=Agreement(100.0, 0.0, 0.0, 1.0),
        ),
        efficiency=efficiency.annotate([], None, "GFLOP/s"),
        size_bytes=2**20,
        notes=["n"],
    )
    data = result.to_dict()
    assert data["size_mb"] == 1.0
    assert BenchResult.from_dict(data) == result
    assert BenchResult.from_json(result.save_json(tmp_path / "r.json")) == result


def test_cold_call_not_taken_reads_back_as_nan(tmp_path):
    """NaN is written as null (strict JSON) and a float field reads null back as NaN."""
    s = stats.latency_stats([1.0, 2.0], 1, 0.01)  # no cold call, too few values for a CI
    result = BenchResult(
        mode="fp32", status="ok", settings=BenchSettings(options=BenchOptions()), latency=[s]
    )
    path = result.save_json(tmp_path / "r.json")
    assert '"cold_ms": null' in path.read_text()
    back = BenchResult.from_json(path).latency[0]
    assert math.isnan(back.cold_ms) and math.isnan(back.median_ci_low_ms)
