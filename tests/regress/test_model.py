"""The run-level model: per-run medians, the bootstrap interval of the ratio, the baseline's noise."""

from __future__ import annotations

import numpy as np
import pytest
from regress_records import run_stats, side, verdicts

from qbench.errors import QBenchError
from qbench.regress import (
    IMPROVED,
    INCONCLUSIVE,
    NOISY,
    OK,
    REGRESSION,
    RegressOptions,
    compare,
    compare_latency,
    compare_runs,
    parse_threshold,
)

# Per-run medians (ms) recorded on the development machine (2 cores shared with other jobs) by
# 'qbench regress --ab' of one unchanged tiny-cnn workspace against a copy: A's runs then B's,
# per variant x batch size. The 47-76 ms runs are real: default threads on a busy machine.
RECORDED_RUN_MEDIANS = {
    "fp32 b1": [0.117, 0.119, 46.994, 0.109, 0.101, 0.131],
    "fp32 b8": [0.473, 55.854, 2.218, 0.468, 0.455, 0.481],
    "int8-ptq b1": [0.198, 0.221, 68.472, 0.193, 0.177, 68.468],
    "int8-ptq b8": [0.417, 73.475, 0.437, 0.417, 0.377, 76.431],
    "onnx-int8 b1": [0.048, 0.054, 0.05, 0.048, 0.045, 0.05],
    "onnx-int8 b8": [0.277, 0.308, 0.307, 0.243, 0.234, 0.309],
}


def test_unchanged_runs_with_recorded_drift_never_regress():
    """20 simulated unchanged jobs per recorded series: each side's 5 runs drawn from the same runs."""
    rng = np.random.default_rng(8)
    opts = RegressOptions()
    for name, medians in RECORDED_RUN_MEDIANS.items():
        for job in range(20):
            base, cur = (list(rng.choice(medians, 5)) for _ in range(2))
            row = compare_latency("fp32", run_stats(1, base, job), run_stats(1, cur, job + 1), opts)
            assert row.verdict != REGRESSION, (name, base, cur, row)


def test_a_drifting_current_job_is_not_a_regression(real):
    """A whole job 15 % slower, but the baseline's own runs swung by 25 %: noise, not a regression."""
    base = real(runs=[1.0, 0.95, 1.25, 1.0, 0.98], seed=1)
    cur = real(runs=[1.15, 1.14, 1.16, 1.15, 1.17], seed=2)
    report = compare(side(base), side(cur), RegressOptions())
    latency = [r for r in report.rows if r.batch_size is not None]
    assert {r.verdict for r in latency} == {NOISY} and report.passed
    assert all("between-run noise" in r.note for r in latency)


def test_tight_20pct_slowdown_is_caught(real):
    base = real(runs=[1.0, 1.01, 0.99, 1.0, 1.02], seed=1)
    cur = real(runs=[1.2, 1.21, 1.19, 1.2, 1.22], seed=2)
    report = compare(side(base), side(cur), RegressOptions())
    latency = [r for r in report.rows if r.batch_size is not None]
    assert all(r.verdict == REGRESSION for r in latency)
    assert all(r.ratio == pytest.approx(1.2, abs=0.01) and r.ci_low > 1.1 for r in latency)
    assert all(r.runs == (5, 5) for r in latency)
    assert not report.passed and report.exit_code == 1
    assert report.verdict_line().startswith("FAIL: 2 failure(s) in 3 comparisons: fp32 b1 +19.")


def test_one_slow_current_run_is_not_enough(real):
    """The median of run medians ignores one disturbed run; the rest show no slowdown."""
    base = real(runs=[1.0, 1.01, 0.99, 1.0, 1.02], seed=1)
    cur = real(runs=[1.0, 3.0, 0.99, 1.01, 1.0], seed=2)
    assert compare(side(base), side(cur), RegressOptions()).passed


def test_overlapping_runs_are_not_significant():
    """25 % slower at the median, but the runs overlap: the interval reaches 1."""
    row = compare_latency(
        "fp32",
        run_stats(1, [1.0, 1.0, 1.3, 1.0, 1.0], 0),
        run_stats(1, [1.25, 1.0, 1.3, 1.25, 1.0], 1),
        RegressOptions(),
    )
    assert row.verdict == NOISY and row.ratio > 1.2


def test_ratio_is_the_ratio_of_medians_of_run_medians(real):
    base, cur = real(runs=[1.0, 1.1, 0.9], seed=1), real(runs=[1.3, 1.2, 1.4], seed=2)
    row = compare(side(base), side(cur), RegressOptions()).rows[0]
    b, c = base.latency_at(1), cur.latency_at(1)
    assert row.ratio == pytest.approx(c.median_ms / b.median_ms)  # median_ms is the median of the runs
    assert row.baseline == pytest.approx(b.median_ms) and row.current == pytest.approx(c.median_ms)


@pytest.mark.parametrize("runs", [1, 2])
def test_too_few_runs_are_inconclusive(real, runs):
    base, cur = real(runs=[1.0] * runs, seed=1), real(runs=[1.5] * runs, seed=2)
    report = compare(side(base), side(cur), RegressOptions())
    row = report.rows[0]
    assert row.verdict == INCONCLUSIVE and row.note.startswith(f"inconclusive: {runs} baseline and {runs}")
    assert report.passed and report.verdict_line().startswith("INCONCLUSIVE: no regression")
    assert not compare(side(base), side(cur), RegressOptions(fail_inconclusive=True)).passed
    if runs == 2:  # a team that accepts two runs a side gets a verdict
        assert compare(side(base), side(cur), RegressOptions(min_runs=2)).rows[0].verdict == REGRESSION


def test_improvement_and_throughput(real):
    base, cur = real(runs=[1.0, 1.01, 0.99], seed=1), real(runs=[0.7, 0.71, 0.69], seed=2)
    assert verdicts(compare(side(base), side(cur), RegressOptions()))[("fp32", 1)] == IMPROVED
    slow = real(runs=[1.3, 1.31, 1.29], seed=2)
    row = compare(side(base), side(slow), RegressOptions(metric="throughput")).rows[0]
    assert row.metric == "throughput img/s" and row.verdict == REGRESSION and row.change_pct < -20


def test_threshold_and_absolute_floor(real):
    base, cur = real(runs=[1.0, 1.01, 0.99], seed=1), real(runs=[1.08, 1.09, 1.07], seed=2)
    assert verdicts(compare(side(base), side(cur), RegressOptions()))[("fp32", 1)] == OK
    assert verdicts(compare(side(base), side(cur), RegressOptions(threshold=0.05)))[("fp32", 1)] == REGRESSION
    # 2 ms -> 2.6 ms at batch 1 is under a 1 ms floor; batch 8 (16 -> 20.8 ms) is not
    slow = real(runs=[1.3, 1.31, 1.29], seed=2)
    v = verdicts(compare(side(base), side(slow), RegressOptions(min_abs_ms=1.0)))
    assert (v[("fp32", 1)], v[("fp32", 8)]) == (OK, REGRESSION)


def test_bootstrap_interval_is_deterministic():
    first = compare_runs([1.0, 1.02, 0.99, 1.01], [1.2, 1.25, 1.18, 1.22], 0.05)
    assert first == compare_runs([1.0, 1.02, 0.99, 1.01], [1.2, 1.25, 1.18, 1.22], 0.05)
    assert first.ci_low < first.ratio < first.ci_high and first.noise == pytest.approx(1.02 / 1.005 - 1)


@pytest.mark.parametrize(
    ("text", "value"),
    [("10%", 0.10), ("0.1", 0.1), ("5 %", 0.05), ("150%", 1.5), ("0", 0.0), ("1", 1.0)],
)
def test_threshold_parsing(text, value):
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "why"), [("10", "ambiguous"), ("ten", "not a number"), ("-5%", "non-negative")]
)
def test_threshold_parsing_rejects(text, why):
    with pytest.raises(QBenchError, match=why):
        parse_threshold(text)


def test_options_validate():
    for bad, match in [
        ({"alpha": 0}, "alpha"),
        ({"metric": "p99"}, "run by run"),
        ({"min_runs": 1}, "min-runs"),
    ]:
        with pytest.raises(QBenchError, match=match):
            RegressOptions(**bad)
