"""The comparison: one row per variant x batch size (and per variant's top-1), and the verdict."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from qbench.errors import QBenchError
from qbench.records import BenchResult, LatencyStats
from qbench.regress.options import METRICS, VERDICT_KIND, RegressOptions
from qbench.regress.results import ResultSet, machine_warnings
from qbench.reports.sources import baseline_first

OK, REGRESSION, IMPROVED, NOISY, MISSING = "ok", "REGRESSION", "improved", "noisy", "missing"


@dataclass
class Row:
    variant: str
    batch_size: int | None  # None: the accuracy row of a variant
    metric: str
    baseline: float | None
    current: float | None
    change_pct: float | None  # (current / baseline - 1) in %; top-1 rows: difference in pp
    p_value: float | None
    verdict: str
    note: str = ""

    @property
    def flagged(self) -> bool:
        return self.verdict != OK

    @property
    def ratio(self) -> float | None:
        """current / baseline of a latency row (the reports' definition of a ratio of medians)."""
        if self.batch_size is None or self.change_pct is None:
            return None
        return 1.0 + self.change_pct / 100.0


@dataclass
class Report:
    options: RegressOptions
    baseline_source: str
    current_source: str
    rows: list[Row] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(1 for r in self.rows if r.verdict == verdict)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == REGRESSION]

    @property
    def passed(self) -> bool:
        return not self.regressions

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def verdict_line(self) -> str:
        compared = sum(1 for r in self.rows if r.verdict != MISSING)
        extras = [
            f"{n} {label}"
            for label, n in (
                ("improved", self.count(IMPROVED)),
                ("noisy", self.count(NOISY)),
                ("missing", self.count(MISSING)),
            )
            if n
        ]
        tail = f" ({', '.join(extras)})" if extras else ""
        if self.passed:
            return f"PASS: no regression in {compared} comparisons{tail}."
        worst = ", ".join(f"{r.variant} {_where(r)} {fmt_change(r)}" for r in self.regressions[:3])
        more = "" if len(self.regressions) <= 3 else f", +{len(self.regressions) - 3} more"
        return f"FAIL: {len(self.regressions)} regression(s) in {compared} comparisons: {worst}{more}{tail}."

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": VERDICT_KIND,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "verdict": self.verdict_line(),
            "baseline": self.baseline_source,
            "current": self.current_source,
            "options": asdict(self.options),
            "counts": {v: self.count(v) for v in (OK, REGRESSION, IMPROVED, NOISY, MISSING)},
            "warnings": self.warnings,
            "rows": [{**asdict(r), "ratio": r.ratio} for r in self.rows],
        }


def _where(row: Row) -> str:
    return "top-1" if row.batch_size is None else f"b{row.batch_size}"


def _samples(stats: LatencyStats) -> list[float]:
    return [s for s in stats.samples_ms if math.isfinite(s)]


def slower_p_value(base: list[float], cur: list[float], slower: bool) -> float | None:
    """One-sided Mann-Whitney U p-value that ``cur`` is slower (or faster) than ``base``."""
    if len(base) < 3 or len(cur) < 3:
        return None
    from scipy.stats import mannwhitneyu

    p = float(mannwhitneyu(cur, base, alternative="greater" if slower else "less").pvalue)
    return p if math.isfinite(p) else 1.0  # all samples tied: no evidence either way


def _batch_ms(stats: LatencyStats, value: float, metric: str) -> float:
    """The metric as milliseconds per batch, for the absolute floor."""
    if metric == "throughput":
        return stats.batch_size * 1000.0 / value if value > 0 else math.inf
    return value


def compare_latency(mode: str, base: LatencyStats, cur: LatencyStats, opts: RegressOptions) -> Row:
    statistic = METRICS[opts.metric]
    b, c = statistic(base), statistic(cur)
    unit = "img/s" if opts.metric == "throughput" else "ms"
    metric = f"{opts.metric} {unit}"
    if not (math.isfinite(b) and math.isfinite(c)) or b <= 0:
        return Row(mode, base.batch_size, metric, b, c, None, None, MISSING, "metric not recorded")
    change = (c / b - 1.0) * 100.0
    # "slower" means more ms, or fewer images/s
    slower = c < b if opts.metric == "throughput" else c > b
    rel = abs(change) / 100.0
    abs_ms = abs(_batch_ms(cur, c, opts.metric) - _batch_ms(base, b, opts.metric))
    p = slower_p_value(_samples(base), _samples(cur), slower)
    notes = []
    noisy_sides = [side for side, s in (("baseline", base), ("current", cur)) if s.noisy]
    if noisy_sides:
        notes.append(f"noisy {' and '.join(noisy_sides)} (CV {base.cv:.0%} -> {cur.cv:.0%})")
    if p is None:
        notes.append("no raw samples: threshold only")
    beyond = rel > opts.threshold and abs_ms > opts.min_abs_ms and c != b
    if not beyond:
        verdict = NOISY if noisy_sides else OK
    elif p is not None and p >= opts.alpha:
        verdict = NOISY
        notes.append(f"not significant (p >= {opts.alpha:g})")
    else:
        verdict = REGRESSION if slower else IMPROVED
    return Row(mode, base.batch_size, metric, b, c, change, p, verdict, "; ".join(notes))


def compare_accuracy(mode: str, base: BenchResult, cur: BenchResult, opts: RegressOptions) -> Row | None:
    if base.accuracy is None or cur.accuracy is None:
        return None
    b, c = float(base.accuracy.top1), float(cur.accuracy.top1)
    drop = b - c
    if drop > opts.max_accuracy_drop:
        verdict, note = REGRESSION, f"top-1 dropped {drop:.2f} pp (limit {opts.max_accuracy_drop:g} pp)"
    elif -drop > opts.max_accuracy_drop:
        verdict, note = IMPROVED, f"top-1 rose {-drop:.2f} pp"
    else:
        verdict, note = OK, ""
    # change_pct of an accuracy row is in percentage points, signed as the difference
    return Row(mode, None, "top-1 %", b, c, c - b, None, verdict, note)


def _status_note(side: str, r: BenchResult | None) -> str:
    if r is None:
        return f"not in {side}"
    if not r.ok:
        return f"{side}: {r.status}" + (f" ({r.skip_reason})" if r.skip_reason else "")
    return f"not measured in {side}"


def compare(baseline: ResultSet, current: ResultSet, opts: RegressOptions) -> Report:
    """Compare every variant x batch size present on both sides; the rest are rows 'missing'."""
    report = Report(opts, baseline.source, current.source)
    base_ok, cur_ok = baseline.ok(), current.ok()
    modes = list(dict.fromkeys([*baseline.results, *current.results]))
    modes.sort(key=baseline_first)
    pairs = 0
    for mode in modes:
        b, c = base_ok.get(mode), cur_ok.get(mode)
        if b is None or c is None:
            if b is None and c is None:
                note = f"{_status_note('baseline', baseline.results.get(mode))}; " + _status_note(
                    "current", current.results.get(mode)
                )
            elif b is None:
                note = _status_note("baseline", baseline.results.get(mode))
            else:
                note = _status_note("current", current.results.get(mode))
            report.rows.append(Row(mode, None, "-", None, None, None, None, MISSING, note))
            continue
        sizes = sorted({s.batch_size for s in b.latency} | {s.batch_size for s in c.latency})
        for size in sizes:
            sb, sc = b.latency_at(size), c.latency_at(size)
            if sb is None or sc is None:
                note = "not measured in " + ("baseline" if sb is None else "current")
                report.rows.append(Row(mode, size, opts.metric, None, None, None, None, MISSING, note))
                continue
            report.rows.append(compare_latency(mode, sb, sc, opts))
            pairs += 1
        acc = compare_accuracy(mode, b, c, opts)
        if acc is not None:
            report.rows.append(acc)
    if pairs == 0:
        raise QBenchError(
            f"baseline {baseline.source} and current {current.source} share no measured variant x batch "
            f"size (baseline: {', '.join(base_ok) or 'none'}; current: {', '.join(cur_ok) or 'none'}); "
            "bench the same variants and batch sizes."
        )
    compared = [m for m in modes if m in base_ok and m in cur_ok]
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


def fmt_p(p: float | None) -> str:
    if p is None:
        return "-"
    return f"{p:.2g}" if p >= 1e-4 else "<1e-4"
