"""The Markdown summary of a verdict: a PR comment or ``$GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

from qbench.regress.verdict import (
    REGRESSION,
    Report,
    Row,
    fmt_change,
    fmt_interval,
    fmt_noise,
    fmt_runs,
    fmt_value,
)


def model_sentence(report: Report) -> str:
    """The rule the verdict applied, in one sentence (Markdown and the terminal share it)."""
    o = report.options
    throughput = o.metric == "throughput"
    what = "throughput (batch / median)" if throughput else "median"
    worse = f"{'throughput down' if throughput else 'latency up'} by > {o.threshold:.0%}"
    beyond = "below" if throughput else "above"
    return (
        f"{report.mode}; {what} of per-run medians; regression = {worse}, by more than the baseline's "
        f"between-run noise and by > {o.min_abs_ms:g} ms per batch, with the {1 - 2 * o.alpha:.0%} "
        f"bootstrap interval over runs {beyond} the threshold too; >= {o.min_runs} runs a side; "
        + (f"top-1 drop limit {o.max_accuracy_drop:g} pp." if o.accuracy_gate else "accuracy gate off.")
    )


def markdown_summary(report: Report) -> str:
    from qbench.reports.fmt import markdown_cell as cell

    status = "PASS" if report.passed else "FAIL"
    icon = ":white_check_mark:" if report.passed else ":x:"
    lines = [
        f"### {icon} qbench regress: {status}",
        "",
        report.verdict_line(),
        "",
        model_sentence(report),
        "",
    ]
    for w in report.warnings:
        lines += [f"> **Warning:** {cell(w)}", ""]

    def table(rows: list[Row]) -> list[str]:
        out = [
            "| variant | batch | metric | baseline | current | change | interval | noise | runs | verdict | note |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        ]
        for r in rows:
            verdict = f"**{r.verdict}**" if r.verdict in (REGRESSION, "MISSING") else r.verdict
            batch = "-" if r.batch_size is None else str(r.batch_size)
            out.append(
                f"| {cell(r.variant)} | {batch} | {cell(r.metric)} | {fmt_value(r.baseline, r.metric)} | "
                f"{fmt_value(r.current, r.metric)} | {fmt_change(r)} | {fmt_interval(r)} | {fmt_noise(r)} | "
                f"{fmt_runs(r)} | {verdict} | {cell(r.note)} |"
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
