"""``qbench regress``: gate CI on latency and accuracy regressions against a stored baseline."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from qbench.cli.common import add_workspace_args, workspace_of
from qbench.errors import QBenchError

VERDICT_STYLE = {
    "ok": "green",
    "REGRESSION": "bold red",
    "improved": "cyan",
    "noisy": "yellow",
    "missing": "dim",
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from qbench.regress import METRICS, RegressOptions

    d = RegressOptions()
    p = subparsers.add_parser(
        "regress",
        help="compare results with a stored baseline; exit 1 on a latency or accuracy regression",
        description=(
            "Compare the current results (default: the workspace's results/) with a baseline per variant "
            "x batch size. A regression is a slowdown beyond --threshold and --min-abs-ms that a one-sided "
            "Mann-Whitney U test on the raw samples finds significant (p < --alpha), or a top-1 drop beyond "
            "--max-accuracy-drop. Exit status: 0 no regression, 1 regression, 2 bad input."
        ),
    )
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="PATH",
        help="results JSON file, results/ folder, workspace folder, or a file written by --save-baseline",
    )
    p.add_argument(
        "--current",
        type=Path,
        metavar="PATH",
        help="the same kinds of PATH as --baseline (default: the workspace RUNS_DIR/EXP)",
    )
    p.add_argument(
        "--metric",
        choices=list(METRICS),
        default=d.metric,
        help="latency statistic to compare (default: %(default)s)",
    )
    p.add_argument(
        "--threshold",
        default=f"{d.threshold:.0%}",
        help="relative slowdown that counts: '10%%' or 0.1 (default: %(default)s)",
    )
    p.add_argument(
        "--min-abs-ms",
        type=float,
        default=d.min_abs_ms,
        help="and at least this many ms per batch slower (default: %(default)s)",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=d.alpha,
        help="significance level of the one-sided Mann-Whitney U test on raw samples (default: %(default)s)",
    )
    p.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=d.max_accuracy_drop,
        metavar="PP",
        help="largest allowed top-1 drop in percentage points (default: %(default)s)",
    )
    p.add_argument(
        "--strict-machine",
        action="store_true",
        help="make a baseline from a different CPU/GPU an error (exit 2) instead of a warning",
    )
    p.add_argument(
        "--summary-md", type=Path, metavar="FILE", help="write a Markdown summary for a PR comment"
    )
    p.add_argument("--json", type=Path, dest="json_out", metavar="FILE", help="write the verdict as JSON")
    p.add_argument(
        "--save-baseline",
        type=Path,
        metavar="FILE",
        help="write the current results as one baseline file (a CI artifact); without --baseline only save",
    )
    add_workspace_args(p)
    p.set_defaults(func=run)
    return p


def _current(args: argparse.Namespace):
    from qbench.regress import load_results

    if args.current is not None:
        return load_results(args.current, "current")
    ws = workspace_of(args)
    if not ws.result_paths():
        raise QBenchError(f"no results in {ws.results_dir}; run 'qbench bench' first or pass --current PATH.")
    return load_results(ws.root, "current")


def results_table(report):
    from rich.table import Table

    from qbench.regress import fmt_change, fmt_p, fmt_value

    opts = report.options
    table = Table(
        title=f"qbench regress ({opts.metric}, threshold {opts.threshold:.0%}, alpha {opts.alpha:g})"
    )
    for col in ("variant", "batch", "metric", "baseline -> current", "change", "p-value", "verdict", "note"):
        table.add_column(col, justify="right" if col in ("batch", "change", "p-value") else "left")
    for r in report.rows:
        style = VERDICT_STYLE.get(r.verdict, "")
        table.add_row(
            r.variant,
            "-" if r.batch_size is None else str(r.batch_size),
            r.metric,
            f"{fmt_value(r.baseline, r.metric)} -> {fmt_value(r.current, r.metric)}",
            fmt_change(r),
            fmt_p(r.p_value),
            f"[{style}]{r.verdict}[/]" if style else r.verdict,
            r.note,
        )
    return table


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from qbench.records.io import write_json, write_text
    from qbench.regress import RegressOptions, compare, load_results, markdown_summary, parse_threshold

    options = RegressOptions(
        metric=args.metric,
        threshold=parse_threshold(args.threshold),
        min_abs_ms=args.min_abs_ms,
        alpha=args.alpha,
        max_accuracy_drop=args.max_accuracy_drop,
    )
    if args.baseline is None and args.save_baseline is None:
        raise QBenchError("give --baseline PATH to compare against (or --save-baseline FILE to write one).")
    baseline = load_results(args.baseline, "baseline") if args.baseline is not None else None
    current = _current(args)
    out = Console()
    if not out.is_terminal:
        out = Console(width=160)  # a CI log: do not wrap the table at 80 columns
    if args.save_baseline is not None:
        from qbench.regress import save_baseline

        save_baseline(current, args.save_baseline)
        out.print(f"baseline saved: {args.save_baseline} ({len(current.results)} variants)")
        if baseline is None:
            return 0

    report = compare(baseline, current, options)
    if report.warnings and args.strict_machine:
        raise QBenchError(
            f"{report.warnings[0][:-1]}; rerun the baseline on this machine or drop --strict-machine."
        )
    for w in report.warnings:
        out.print(f"[bold yellow]warning:[/] {escape(w)}")
    out.print(results_table(report))
    style = "bold green" if report.passed else "bold red"
    out.print(f"[{style}]regress: {escape(report.verdict_line())}[/]")

    if args.summary_md is not None or os.environ.get("GITHUB_STEP_SUMMARY"):
        markdown = markdown_summary(report)
        if args.summary_md is not None:
            write_text(args.summary_md, markdown)
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if step_summary:
            with open(step_summary, "a", encoding="utf-8") as fh:  # GitHub's contract: append
                fh.write(markdown + "\n")
    if args.json_out is not None:
        write_json(args.json_out, report.to_dict())
    return report.exit_code
