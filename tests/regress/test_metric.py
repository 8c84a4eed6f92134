"""``--metric throughput``: every number shown, the threshold and the verdict in throughput, through
the real CLI and all of its outputs; the decision stays the physical one (a slowdown regresses)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from regress_records import run_stats, side, verdicts, write_results

from qbench.regress import IMPROVED, OK, REGRESSION, RegressOptions, compare, compare_latency

TIGHT = [1.0, 1.01, 0.99, 1.0]


def _interval(text: str) -> tuple[float, float]:
    low, high = re.search(r"\[([+-][\d.]+)%, ([+-][\d.]+)%\]", text).groups()
    return float(low), float(high)


def test_cli_throughput_shows_every_number_in_throughput(tmp_path, regress_cli, real):
    """2x slower: throughput -50% with an interval around -50% in the table, the Markdown, the JSON
    and the JUnit (it was 'change -50.0%' beside the latency interval [+83%, +118%])."""
    write_results(tmp_path / "base", real(runs=TIGHT, seed=1))
    write_results(tmp_path / "slow", real(runs=[2 * f for f in TIGHT], seed=2))
    args = ("--baseline", "base", "--current", "slow", "--metric", "throughput")
    code, out, err = regress_cli(*args, "--summary-md", "s.md", "--json", "v.json", "--junit", "j.xml")
    assert code == 1, out + err
    assert "threshold -10%" in out and "throughput down by > 10%" in out and "below the threshold" in out

    verdict = json.loads((tmp_path / "v.json").read_text())
    rows = {r["batch_size"]: r for r in verdict["rows"] if r["batch_size"] is not None}
    for b, row in rows.items():
        assert row["metric"] == "throughput img/s" and row["verdict"] == REGRESSION, row
        assert row["current"] < row["baseline"]  # img/s: the slower side has the lower throughput
        assert row["change_pct"] == pytest.approx(-50.0, abs=2.0)
        assert row["ratio"] == pytest.approx(row["current"] / row["baseline"])
        assert row["ci_low"] <= row["ratio"] <= row["ci_high"] < 1.0 - 0.10
        assert f"b{b} {row['change_pct']:+.1f}%" in verdict["verdict"]

    summary = (tmp_path / "s.md").read_text()
    (line,) = [ln for ln in summary.splitlines() if ln.startswith("| fp32 | 1 | throughput img/s")][:1]
    change = float(re.search(r"\| ([+-][\d.]+)% \|", line).group(1))
    low, high = _interval(line)
    assert low <= change <= high < -10 and "**REGRESSION**" in line

    suite = ET.parse(tmp_path / "j.xml").getroot()
    failure = next(c for c in suite.iter("testcase") if c.get("name") == "b8").find("failure")
    change = float(re.search(r"change ([+-][\d.]+)%", failure.text).group(1))
    low, high = _interval(failure.text)
    assert failure.get("type") == "regression" and low <= change <= high < -10

    # the same records, the other way round: 2x faster is +100% throughput, improved
    code, out, _ = regress_cli(
        "--baseline", "slow", "--current", "base", "--metric", "throughput", "--json", "f.json"
    )
    rows = [r for r in json.loads((tmp_path / "f.json").read_text())["rows"] if r["batch_size"] is not None]
    assert code == 0 and all(r["verdict"] == IMPROVED and 1.9 < r["ci_low"] <= r["ratio"] for r in rows)
    assert all(r["change_pct"] == pytest.approx(100.0, abs=5.0) for r in rows)


def test_cli_threshold_is_read_in_the_metric_shown(tmp_path, regress_cli, real):
    """1.5x the latency is +50% latency but -33% throughput: a 40% threshold fails the first only."""
    write_results(tmp_path / "base", real(runs=TIGHT, seed=1))
    write_results(tmp_path / "slow", real(runs=[1.5 * f for f in TIGHT], seed=2))
    args = ("--baseline", "base", "--current", "slow", "--threshold", "40%")
    code, out, _ = regress_cli(*args, "--json", "median.json")
    assert code == 1 and "FAIL" in out
    code, out, err = regress_cli(*args, "--metric", "throughput", "--json", "throughput.json")
    assert code == 0 and "PASS" in out, out + err
    rows = json.loads((tmp_path / "throughput.json").read_text())["rows"]
    assert all(r["verdict"] == OK and r["change_pct"] == pytest.approx(-33.3, abs=1.5) for r in rows[:2])


def test_noise_and_interval_notes_are_in_the_metric(real):
    """The baseline's noise and a non-significant interval are reported as throughput changes."""
    base = real(runs=[1.0, 0.98, 1.1, 1.0, 0.99], seed=1)
    cur = real(runs=[1.4, 1.41, 1.39, 1.4, 1.4], seed=2)
    median = compare(side(base), side(cur), RegressOptions()).rows[0]
    thr = compare(side(base), side(cur), RegressOptions(metric="throughput")).rows[0]
    assert median.verdict == thr.verdict == REGRESSION
    assert thr.ratio == pytest.approx(1 / median.ratio)
    assert (thr.ci_low, thr.ci_high) == pytest.approx((1 / median.ci_high, 1 / median.ci_low))
    assert thr.noise_pct == pytest.approx((1 - 1 / (1 + median.noise_pct / 100)) * 100)

    swinging = real(runs=[1.0, 0.95, 1.25, 1.0, 0.98], seed=1)
    drifted = real(runs=[1.15, 1.14, 1.16, 1.15, 1.17], seed=2)
    row = compare(side(swinging), side(drifted), RegressOptions(metric="throughput", threshold=0.1)).rows[0]
    assert row.verdict == "noisy" and row.noise_pct == pytest.approx(20, abs=1)  # 1 / 1.25 - 1
    assert row.note == f"within the baseline's between-run noise (-{row.noise_pct:.1f}%)"
    overlapping = real(runs=[1.25, 1.0, 1.3, 1.25, 1.0], seed=2)
    row = compare(side(base), side(overlapping), RegressOptions(metric="throughput")).rows[0]
    assert row.verdict == "noisy" and row.change_pct < -10
    assert row.note == f"not significant: the runs' interval reaches {(row.ci_high - 1) * 100:+.1f}%"
    assert row.ci_high > 0.9  # the interval's upper end is inside the -10% threshold


def test_throughput_decision_is_the_median_decision_at_the_equivalent_threshold():
    """Throughput down by t / (1 + t) is latency up by t: the same rows fail, improve and pass."""
    rng = np.random.default_rng(3)
    for case in range(60):
        factor = rng.uniform(0.6, 1.6)
        base = list(rng.lognormal(0.0, 0.05, 5))
        cur = list(factor * rng.lognormal(0.0, 0.05, 5))
        b, c = run_stats(8, base, case), run_stats(8, cur, case + 100)
        for t in (0.05, 0.1, 0.25):
            m = compare_latency("fp32", b, c, RegressOptions(threshold=t))
            thr = compare_latency("fp32", b, c, RegressOptions(metric="throughput", threshold=t / (1 + t)))
            assert thr.verdict == m.verdict, (factor, t, m, thr)
            # and at the same threshold, what fails in throughput fails in latency too
            same = compare_latency("fp32", b, c, RegressOptions(metric="throughput", threshold=t))
            assert same.verdict != REGRESSION or m.verdict == REGRESSION
            assert np.sign(same.change_pct) == -np.sign(m.change_pct)


def test_a_missing_batch_size_row_names_the_metric(real):
    cur = real()
    cur.latency = cur.latency[:1]
    report = compare(side(real()), side(cur), RegressOptions(metric="throughput"))
    assert [r.metric for r in report.rows if r.batch_size == 8] == ["throughput img/s"]
    assert verdicts(report)[("fp32", 8)] == "MISSING"
