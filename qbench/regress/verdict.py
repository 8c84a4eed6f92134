"""The comparison: one row per variant x batch size (and per variant's top-1), and the verdict.

A latency row is a REGRESSION when the current median of run medians is worse than the
baseline's, in the chosen metric, by more than ``threshold`` (median: ms per batch up by more
than it; throughput: images/s down by more than it), by more than the baseline's own between-run
noise (its slowest run against its median) and by more than ``min_abs_ms`` per batch, and the
bootstrap interval of the change lies wholly beyond the threshold too. Either metric is a
function of the same per-run medians (throughput = batch / median), so a slowdown is a
regression under both; only the size the threshold asks for is read in the metric shown. A row
is "improved" when swapping the two sides would make it a regression. With fewer than
``min_runs`` runs a side it is INCONCLUSIVE.

Every number a row carries (change, ratio, interval, noise, notes) is in the chosen metric.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from qbench.errors import QBenchError
from qbench.records import BenchResult, LatencyStats
from qbench.regress.options import VERDICT_KIND, RegressOptions
from qbench.regress.results import ResultSet, check_same_model, machine_warnings
from qbench.regress.runs import compare_runs, run_medians
from qbench.reports.sources import baseline_first

OK, REGRESSION, IMPROVED, NOISY = "ok", "REGRESSION", "improved", "noisy"
INCONCLUSIVE, MISSING, NOT_COMPARED = "inconclusive", "MISSING", "not compared"
VERDICTS = (OK, REGRESSION, IMPROVED, NOISY, INCONCLUSIVE, MISSING, NOT_COMPARED)


@dataclass
class Row:
    variant: str
    batch_size: int | None  # None: the variant's accuracy row, or its whole-variant MISSING row
    metric: str
    baseline: float | None
    current: float | None
    change_pct: float | None  # (current / baseline - 1) of the metric in %; top-1 rows: difference in pp
    verdict: str
    note: str = ""
    # current / baseline of the metric: median above 1, or throughput below 1, is slower
    ratio: float | None = None
    ci_low: float | None = None  # bootstrap interval of ``ratio`` over runs (low <= high in either metric)
    ci_high: float | None = None
    noise_pct: float | None = None  # the baseline's slowest run against its median, in % of the metric
    runs: tuple[int, int] | None = None  # process runs of (baseline, current)

    @property
    def flagged(self) -> bool:
        return self.verdict != OK


@dataclass
class Report:
    options: RegressOptions
    baseline_source: str
    current_source: str
    rows: list[Row] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    mode: str = "stored baseline"  # or "A/B, interleaved in one job"

    def count(self, verdict: str) -> int:
        return sum(1 for r in self.rows if r.verdict == verdict)

    def failures(self) -> list[Row]:
        failing = {REGRESSION}
        if not self.options.allow_missing:
            failing.add(MISSING)
        if self.options.fail_inconclusive:
            failing.add(INCONCLUSIVE)
        return [r for r in self.rows if r.verdict in failing]

    @property
    def passed(self) -> bool:
        return not self.failures()

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def verdict_line(self) -> str:
        compared = sum(1 for r in self.rows if r.verdict not in (MISSING, NOT_COMPARED))
        counted = (IMPROVED, NOISY, INCONCLUSIVE, MISSING, NOT_COMPARED)
        extras = [f"{self.count(v)} {v}" for v in counted if self.count(v) and v not in self._failing()]
        tail = f" ({', '.join(extras)})" if extras else ""
        timed = [r.verdict for r in self.rows if r.batch_size is not None and r.verdict != MISSING]
        if self.passed:
            head = "INCONCLUSIVE" if timed and set(timed) == {INCONCLUSIVE} else "PASS"
            return f"{head}: no regression in {compared} comparisons{tail}."
        failures = self.failures()
        worst = ", ".join(f"{r.variant} {where(r)} {failure_text(r)}" for r in failures[:3])
        more = "" if len(failures) <= 3 else f", +{len(failures) - 3} more"
        return f"FAIL: {len(failures)} failure(s) in {compared} comparisons: {worst}{more}{tail}."

    def _failing(self) -> set[str]:
        return {r.verdict for r in self.failures()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": VERDICT_KIND,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "verdict": self.verdict_line(),
            "mode": self.mode,
            "baseline": self.baseline_source,
            "current": self.current_source,
            "options": asdict(self.options),
            "counts": {v: self.count(v) for v in VERDICTS},
            "warnings": self.warnings,
            "rows": [asdict(r) for r in self.rows],
        }


def where(row: Row) -> str:
    if row.batch_size is not None:
        return f"b{row.batch_size}"
    return "top-1" if row.metric.startswith("top-1") else "(variant)"


def failure_text(row: Row) -> str:
    return row.note if row.verdict == MISSING else fmt_change(row)


def metric_label(metric: str) -> str:
    return f"{metric} {'img/s' if metric == 'throughput' else 'ms'}"


def _metric_value(stats_ms: float, batch_size: int, metric: str) -> float:
    if metric == "throughput":
        return batch_size * 1000.0 / stats_ms if stats_ms > 0 else math.nan
    return stats_ms


def _in_metric(latency_ratio: float, metric: str) -> float:
    """A current / baseline ratio of ms per batch as the ratio of the metric (throughput: its inverse)."""
    return 1.0 / latency_ratio if metric == "throughput" else latency_ratio


def regression_bound(opts: RegressOptions) -> float:
    """The ratio of ms per batch (current / baseline) beyond which the metric is worse by more than
    the threshold: the median up by it, or the throughput down by it (never, for a 100% drop)."""
    if opts.metric == "throughput":
        return 1.0 / (1.0 - opts.threshold) if opts.threshold < 1.0 else math.inf
    return 1.0 + opts.threshold


def compare_latency(mode: str, base: LatencyStats, cur: LatencyStats, opts: RegressOptions) -> Row:
    """One variant x batch size, from the per-run medians of both sides.

    The decisions are taken on the ratio of ms per batch (a slowdown is a regression in either
    metric), against the bound where the chosen metric crosses the threshold; the row reports
    the ratio, its interval and the noise converted into the chosen metric."""
    metric = metric_label(opts.metric)
    b_runs, c_runs = run_medians(base), run_medians(cur)
    if not b_runs or not c_runs:
        note = "no finite median in " + ("baseline" if not b_runs else "current")
        return Row(mode, base.batch_size, metric, None, None, None, MISSING, note)
    runs = compare_runs(b_runs, c_runs, opts.alpha)
    b_ms, c_ms = runs.base_ms, runs.cur_ms
    b_val, c_val = (_metric_value(v, base.batch_size, opts.metric) for v in (b_ms, c_ms))

    def shown(latency_ratio: float) -> float:
        return _in_metric(latency_ratio, opts.metric)

    def pct(latency_ratio: float) -> str:
        return f"{(shown(latency_ratio) - 1.0) * 100:+.1f}%"

    ends = None
    if runs.ci_low is not None and runs.ci_high is not None:
        ends = sorted((shown(runs.ci_low), shown(runs.ci_high)))  # throughput swaps the ends
    row = Row(
        mode,
        base.batch_size,
        metric,
        b_val,
        c_val,
        (shown(runs.ratio) - 1.0) * 100.0,
        OK,
        ratio=shown(runs.ratio),
        ci_low=None if ends is None else ends[0],
        ci_high=None if ends is None else ends[1],
        noise_pct=abs(shown(1.0 + runs.noise) - 1.0) * 100.0,
        runs=(runs.n_base, runs.n_cur),
    )
    ratio, bound = runs.ratio, regression_bound(opts)
    abs_ms = abs(c_ms - b_ms)
    if min(runs.n_base, runs.n_cur) < opts.min_runs:
        row.verdict = INCONCLUSIVE
        row.note = (
            f"inconclusive: {runs.n_base} baseline and {runs.n_cur} current runs "
            f"(need {opts.min_runs} each: bench with --repeats {opts.min_runs} or more)"
        )
    elif ratio > bound and abs_ms > opts.min_abs_ms:
        if ratio <= 1.0 + runs.noise:
            row.verdict = NOISY
            row.note = f"within the baseline's between-run noise ({pct(1.0 + runs.noise)})"
        elif runs.ci_low is not None and runs.ci_low <= bound:
            row.verdict = NOISY
            row.note = f"not significant: the runs' interval reaches {pct(runs.ci_low)}"
        else:
            row.verdict = REGRESSION
    elif ratio < 1.0 / bound and abs_ms > opts.min_abs_ms:  # the sides swapped would be a regression
        significant = (
            runs.ci_high is not None and runs.ci_high < 1.0 / bound and 1.0 - ratio > runs.fast_noise
        )
        row.verdict = IMPROVED if significant else NOISY
        if not significant:
            row.note = "faster, but within the runs' noise"
    return row


def compare_accuracy(mode: str, base: BenchResult, cur: BenchResult, opts: RegressOptions) -> Row | None:
    if not opts.accuracy_gate:
        return None
    assert base.accuracy is not None and cur.accuracy is not None  # compare() checked both
    b, c = float(base.accuracy.top1), float(cur.accuracy.top1)
    drop = b - c
    if drop > opts.max_accuracy_drop:
        verdict, note = REGRESSION, f"top-1 dropped {drop:.2f} pp (limit {opts.max_accuracy_drop:g} pp)"
    elif -drop > opts.max_accuracy_drop:
        verdict, note = IMPROVED, f"top-1 rose {-drop:.2f} pp"
    else:
        verdict, note = OK, ""
    # change_pct of an accuracy row is in percentage points, signed as the difference
    return Row(mode, None, "top-1 %", b, c, c - b, verdict, note)


def _status_note(side: str, r: BenchResult | None) -> str:
    if r is None:
        return f"not in {side}"
    if not r.ok:
        return f"{r.status} in {side}" + (f" ({r.skip_reason.splitlines()[-1]})" if r.skip_reason else "")
    return f"not measured in {side}"


def _check_accuracy_gate(baseline: ResultSet, current: ResultSet, modes: list[str]) -> None:
    """Both sides of every compared variant need top-1 unless the gate is off."""
    lacking = [
        f"{m} ({' and '.join(s for s, rs in (('baseline', baseline), ('current', current)) if rs.results[m].accuracy is None)})"
        for m in modes
        if baseline.results[m].accuracy is None or current.results[m].accuracy is None
    ]
    if lacking:
        raise QBenchError(
            f"the accuracy gate cannot be evaluated: no top-1 for {', '.join(lacking)}; bench without "
            "--no-accuracy or pass --no-accuracy-gate."
        )


def compare(baseline: ResultSet, current: ResultSet, opts: RegressOptions) -> Report:
    """Compare every variant x batch size of the baseline with the current results."""
    check_same_model(baseline, current)
    report = Report(opts, baseline.source, current.source)
    base_ok, cur_ok = baseline.ok(), current.ok()
    modes = sorted(dict.fromkeys([*baseline.results, *current.results]), key=baseline_first)
    compared = [m for m in modes if m in base_ok and m in cur_ok]
    if not compared:
        raise QBenchError(
            f"baseline {baseline.source} and current {current.source} share no measured variant "
            f"(baseline: {', '.join(base_ok) or 'none'}; current: {', '.join(cur_ok) or 'none'}); "
            "bench the same variants."
        )
    if opts.accuracy_gate:
        _check_accuracy_gate(baseline, current, compared)
    for mode in modes:
        b, c = base_ok.get(mode), cur_ok.get(mode)
        if b is None:  # nothing measured to hold the current side to
            note = f"{_status_note('baseline', baseline.results.get(mode))}; nothing to compare"
            report.rows.append(Row(mode, None, "-", None, None, None, NOT_COMPARED, note))
            continue
        if c is None:
            note = _status_note("current", current.results.get(mode))
            report.rows.append(Row(mode, None, "-", None, None, None, MISSING, note))
            continue
        for sb in b.latency:
            sc = c.latency_at(sb.batch_size)
            if sc is None:
                note = f"batch {sb.batch_size} not measured in current"
                row = Row(mode, sb.batch_size, metric_label(opts.metric), None, None, None, MISSING, note)
                report.rows.append(row)
            else:
                report.rows.append(compare_latency(mode, sb, sc, opts))
        acc = compare_accuracy(mode, b, c, opts)
        if acc is not None:
            report.rows.append(acc)
    report.warnings = machine_warnings(baseline, current, compared)
    return report


def fmt_value(value: float | None, metric: str) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if metric.startswith("throughput"):
        return f"{value:,.1f}"
    if metric.startswith("top-1"):
        return f"{value:.2f}"
    return f"{value:,.3f}"


def fmt_change(row: Row) -> str:
    if row.change_pct is None:
        return "-"
    return f"{row.change_pct:+.2f} pp" if row.batch_size is None else f"{row.change_pct:+.1f}%"


def fmt_interval(row: Row) -> str:
    """The bootstrap interval over runs, as percent changes of the row's metric (like the change)."""
    if row.ci_low is None or row.ci_high is None:
        return "-"
    return f"[{(row.ci_low - 1) * 100:+.1f}%, {(row.ci_high - 1) * 100:+.1f}%]"


def fmt_runs(row: Row) -> str:
    return "-" if row.runs is None else f"{row.runs[0]}/{row.runs[1]}"


def fmt_noise(row: Row) -> str:
    return "-" if row.noise_pct is None else f"{row.noise_pct:.1f}%"
