"""The Markdown summary of a verdict: a PR comment or ``$GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

from qbench.regress.verdict import REGRESSION, Report, Row, fmt_change, fmt_p, fmt_value


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
