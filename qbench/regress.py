"""CI regression of latency numbers: current results vs a stored baseline.

Compares per variant x batch size. A pair is a REGRESSION only when the current run is slower
than the baseline by more than the relative threshold AND by more than an absolute floor AND,
where both sides kept raw samples, a one-sided Mann-Whitney U test finds the slowdown
significant, so measurement noise alone cannot fail CI. Top-1 accuracy is gated per variant.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qbench.errors import QBenchError
from qbench.harness.result import BenchResult, LatencyStats
from qbench.workspace import SCHEMA_VERSION, read_json, write_json

BASELINE_KIND = "qbench-regress-baseline"
VERDICT_KIND = "qbench-regress-verdict"
METRICS = {
    "median": "median_ms",
    "mean": "mean_ms",
    "p90": "p90_ms",
    "p95": "p95_ms",
    "throughput": "throughput_ips",
}
OK, REGRESSION, IMPROVED, NOISY, MISSING = "ok", "REGRESSION", "improved", "noisy", "missing"


# ---------------------------------------------------------------------------------------------
# options


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


# ---------------------------------------------------------------------------------------------
# loading


@dataclass
class ResultSet:
    """The records of one side of the comparison, keyed by mode."""

    source: str
    results: dict[str, BenchResult]

    def ok(self) -> dict[str, BenchResult]:
        return {m: r for m, r in self.results.items() if r.status == "ok" and r.latency}


def _result_from(data: dict[str, Any], where: str) -> BenchResult:
    if not isinstance(data, dict) or "mode" not in data or "latency" not in data:
        raise QBenchError(f"{where} is not a qbench result record (no 'mode'/'latency'); pass results JSON.")
    try:
        return BenchResult.from_dict(data)
    except (TypeError, ValueError, AttributeError) as exc:
        raise QBenchError(
            f"{where} is not a valid qbench result record ({exc}); rerun 'qbench bench' to rewrite it."
        ) from None


def _order(results: list[BenchResult]) -> dict[str, BenchResult]:
    return {r.mode: r for r in sorted(results, key=lambda r: (r.mode != "fp32", r.mode))}


def load_results(path: str | Path, what: str = "baseline") -> ResultSet:
    """Results from a results JSON file, a results/ folder, a workspace or a saved baseline file."""
    path = Path(path)
    if not path.exists():
        raise QBenchError(
            f"{what} {path} does not exist; pass a results JSON file, a results/ folder, a workspace "
            "or a file written by 'qbench regress --save-baseline'."
        )
    if path.is_dir():
        folder = path / "results" if (path / "results").is_dir() else path
        files = sorted(folder.glob("*.json"))
        if not files:
            raise QBenchError(
                f"{what} {path} holds no results JSON files; run 'qbench bench' or pass a results file."
            )
        results = [_result_from(read_json(f, f"{what} result"), f"{what} result {f}") for f in files]
        return ResultSet(str(path), _order(results))
    data = read_json(path, what)
    if data.get("kind") == BASELINE_KIND or isinstance(data.get("results"), list):
        records = data.get("results")
        if not isinstance(records, list):
            raise QBenchError(f"{what} {path} has no 'results' list; save it again with --save-baseline.")
        results = [_result_from(d, f"record {i} of {what} {path}") for i, d in enumerate(records)]
        if not results:
            raise QBenchError(
                f"{what} {path} holds no result records; save it again from a benched workspace."
            )
        return ResultSet(str(path), _order(results))
    return ResultSet(str(path), {(r := _result_from(data, f"{what} {path}")).mode: r})


def save_baseline(results: ResultSet, path: str | Path) -> Path:
    """All of ``results`` in one JSON file that ``load_results`` reads back (a CI artifact)."""
    return write_json(
        Path(path),
        {
            "schema_version": SCHEMA_VERSION,
            "kind": BASELINE_KIND,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "source": results.source,
            "results": [r.to_dict() for r in results.results.values()],
        },
    )


# ---------------------------------------------------------------------------------------------
# machine identity


def _dig(data: Any, *paths: str) -> Any:
    for dotted in paths:
        cur = data
        for part in dotted.split("."):
            if isinstance(cur, list):
                cur = cur[int(part)] if part.isdigit() and int(part) < len(cur) else None
            else:
                cur = cur.get(part) if isinstance(cur, dict) else None
        if cur not in (None, "", [], {}):
            return cur
    return None


def machine_of(result: BenchResult) -> str | None:
    """'<CPU model>' plus ' + <GPU>' for a CUDA run; None when the record does not say."""
    env = result.env or {}
    cpu = _dig(env, "cpu.model", "cpu_model", "cpu.brand", "processor")
    gpu = _dig(env, "gpus.0.name", "gpu.name", "gpu_name")
    cpu = cpu if isinstance(cpu, str) else None
    gpu = gpu if isinstance(gpu, str) else None
    if not str(result.device).startswith("cuda"):
        return cpu
    if cpu is None and gpu is None:
        return None
    return f"{cpu or 'unknown CPU'} + {gpu or 'unknown GPU'}"


def machine_warnings(baseline: ResultSet, current: ResultSet, modes: list[str]) -> list[str]:
    """One sentence per distinct machine mismatch among the compared variants."""
    seen: dict[tuple[str, str], list[str]] = {}
    for mode in modes:
        base, cur = machine_of(baseline.results[mode]), machine_of(current.results[mode])
        if base and cur and base != cur:
            seen.setdefault((base, cur), []).append(mode)
    return [
        f"baseline was measured on {b!r} but current on {c!r} ({', '.join(m)}); "
        "latencies from different machines are not comparable."
        for (b, c), m in seen.items()
    ]


# ---------------------------------------------------------------------------------------------
# comparison


@dataclass
class Row:
    variant: str
    batch_size: int | None  # None: the accuracy row of a variant
    metric: str
    baseline: float | None
    current: float | None
    change_pct: float | None  # (current - baseline) / baseline in %; top-1 rows: difference in pp
    p_value: float | None
    verdict: str
    note: str = ""

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
            "rows": [asdict(r) for r in self.rows],
        }


def _where(row: Row) -> str:
    return "top-1" if row.batch_size is None else f"b{row.batch_size}"


def _samples(stats: LatencyStats) -> list[float]:
    return [float(s) for s in stats.samples_ms if s is not None and math.isfinite(s)]


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
    attr = METRICS[opts.metric]
    b, c = float(getattr(base, attr)), float(getattr(cur, attr))
    unit = "img/s" if opts.metric == "throughput" else "ms"
    metric = f"{opts.metric} {unit}"
    if not (math.isfinite(b) and math.isfinite(c)) or b <= 0:
        return Row(mode, base.batch_size, metric, b, c, None, None, MISSING, "metric not recorded")
    change = (c - b) / b * 100.0
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
    if r.status != "ok":
        return f"{side}: {r.status}" + (f" ({r.skip_reason})" if r.skip_reason else "")
    return f"not measured in {side}"


def compare(baseline: ResultSet, current: ResultSet, opts: RegressOptions) -> Report:
    """Compare every variant x batch size present on both sides; the rest are rows 'missing'."""
    report = Report(opts, baseline.source, current.source)
    base_ok, cur_ok = baseline.ok(), current.ok()
    modes = list(dict.fromkeys([*baseline.results, *current.results]))
    modes.sort(key=lambda m: (m != "fp32", m))
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


# ---------------------------------------------------------------------------------------------
# rendering (plain text; the CLI adds the rich table)


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


def markdown_summary(report: Report) -> str:
    from qbench.reports.fmt import markdown_cell as cell

    status = "PASS" if report.passed else "FAIL"
    icon = ":white_check_mark:" if report.passed else ":x:"
    opts = report.options
    lines = [
        f"### {icon} qbench regress: {status}",
        "",
        report.verdict_line(),
        "",
        f"Metric: {opts.metric}; regression = slower by > {opts.threshold:.0%} and > {opts.min_abs_ms:g} ms "
        f"and Mann-Whitney p < {opts.alpha:g}; top-1 drop limit {opts.max_accuracy_drop:g} pp.",
        "",
    ]
    for w in report.warnings:
        lines += [f"> **Warning:** {cell(w)}", ""]

    def table(rows: list[Row]) -> list[str]:
        out = [
            "| variant | batch | metric | baseline | current | change | p-value | verdict | note |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |",
        ]
        for r in rows:
            verdict = f"**{r.verdict}**" if r.verdict == REGRESSION else r.verdict
            batch = "-" if r.batch_size is None else str(r.batch_size)
            out.append(
                f"| {cell(r.variant)} | {batch} | {cell(r.metric)} | {fmt_value(r.baseline, r.metric)} | "
                f"{fmt_value(r.current, r.metric)} | {fmt_change(r)} | {fmt_p(r.p_value)} | {verdict} | "
                f"{cell(r.note)} |"
            )
        return out

    flagged = [r for r in report.rows if r.flagged]
    if flagged:
        lines += [*table(flagged), ""]
    lines += [
        f"<details><summary>All {len(report.rows)} rows</summary>",
        "",
        *table(report.rows),
        "",
        "</details>",
        "",
        f"Baseline: `{report.baseline_source}`; current: `{report.current_source}`.",
        "",
    ]
    return "\n".join(lines)
