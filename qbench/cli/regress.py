"""``qbench regress``: gate CI on latency and accuracy regressions, run by run.

Three ways to get the baseline: ``--baseline PATH`` (results, a workspace or a saved baseline),
``--baseline-store DIR`` (the saved baseline of this machine's fingerprint), or ``--ab A B``
(bench both workspaces alternately in this job; A is the baseline).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from qbench.cli.common import add_workspace_args, parse_name_list, workspace_of
from qbench.errors import QBenchError

VERDICT_STYLE = {
    "ok": "green",
    "REGRESSION": "bold red",
    "MISSING": "bold red",
    "improved": "cyan",
    "noisy": "yellow",
    "inconclusive": "yellow",
    "not compared": "dim",
}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from qbench.regress import METRICS, RegressOptions

    d = RegressOptions()
    p = subparsers.add_parser(
        "regress",
        help="compare results with a baseline run by run; exit 1 on a regression or a missing variant",
        description=(
            "Compare per variant x batch size, with one process run as the unit of evidence: each side's "
            "per-run medians (bench --repeats R, or the runs of --ab). A regression is a ratio of medians "
            "of run medians worse in --metric than --threshold (median: latency up by it; throughput: "
            "images/s down by it), than the baseline's own between-run noise and than --min-abs-ms, whose "
            "bootstrap interval over runs lies beyond the threshold too; with fewer than --min-runs "
            "runs a side the row is 'inconclusive'. A top-1 drop beyond --max-accuracy-drop and a "
            "baseline variant missing, failed or skipped now also fail. "
            "Exit status: 0 pass, 1 regression or missing variant, 2 bad input."
        ),
    )
    src = p.add_argument_group("what to compare")
    src.add_argument(
        "--baseline",
        type=Path,
        metavar="PATH",
        help="results JSON file, folder of result JSON files (such as a workspace's results/), workspace "
        "folder, or a file written by --save-baseline",
    )
    src.add_argument(
        "--baseline-store",
        type=Path,
        metavar="DIR",
        help="a folder of baselines saved by '--save-baseline DIR': use the one of this machine's fingerprint",
    )
    src.add_argument(
        "--current",
        type=Path,
        metavar="PATH",
        help="the same kinds of PATH as --baseline (default: the workspace RUNS_DIR/EXP)",
    )
    src.add_argument(
        "--ab",
        nargs=2,
        type=Path,
        metavar=("WS_A", "WS_B"),
        help="bench workspace A (baseline, e.g. main) and B (the change) alternately in this job, then compare",
    )
    _add_ab_args(p)
    gate = p.add_argument_group("the gate")
    gate.add_argument(
        "--metric",
        choices=list(METRICS),
        default=d.metric,
        help="what the table, interval, threshold and outputs are in: median ms per batch, or throughput "
        "img/s = batch / median; a slowdown is a regression in both (default: %(default)s)",
    )
    gate.add_argument(
        "--threshold",
        default=f"{d.threshold:.0%}",
        help="relative worsening of --metric that counts (median up, throughput down): '10%%' or 0.1 "
        "(default: %(default)s)",
    )
    gate.add_argument(
        "--min-abs-ms",
        type=float,
        default=d.min_abs_ms,
        help="and at least this many ms per batch slower (default: %(default)s)",
    )
    gate.add_argument(
        "--alpha",
        type=float,
        default=d.alpha,
        help="one-sided error of the bootstrap interval over runs (default: %(default)s)",
    )
    gate.add_argument(
        "--min-runs",
        type=int,
        default=d.min_runs,
        help="runs each side needs for a verdict; fewer: 'inconclusive' (default: %(default)s)",
    )
    gate.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=d.max_accuracy_drop,
        metavar="PP",
        help="largest allowed top-1 drop in percentage points (default: %(default)s)",
    )
    gate.add_argument(
        "--allow-missing",
        action="store_true",
        help="pass although a baseline variant is missing, failed or skipped in the current results",
    )
    gate.add_argument(
        "--no-accuracy-gate",
        dest="accuracy_gate",
        action="store_false",
        help="do not gate on top-1 (otherwise results without accuracy are an error)",
    )
    gate.add_argument("--fail-inconclusive", action="store_true", help="exit 1 when a row is inconclusive")
    gate.add_argument(
        "--strict-machine",
        action="store_true",
        help="make a baseline from a different machine fingerprint an error (exit 2) instead of a warning",
    )
    out = p.add_argument_group("outputs")
    out.add_argument("--summary-md", type=Path, metavar="FILE", help="Markdown summary for a PR comment")
    out.add_argument("--json", type=Path, dest="json_out", metavar="FILE", help="the verdict as JSON")
    out.add_argument("--junit", type=Path, metavar="FILE", help="JUnit XML, one test case per comparison")
    out.add_argument(
        "--save-baseline",
        type=Path,
        metavar="PATH",
        help="write the current results as one baseline file, or into a store folder (an existing DIR) "
        "as DIR/<machine fingerprint>.json; without a baseline only save",
    )
    add_workspace_args(p)
    p.set_defaults(func=run)
    return p


def _add_ab_args(p: argparse.ArgumentParser) -> None:
    from qbench.cli.bench import add_sweep_args
    from qbench.regress import DEFAULT_AB_REPEATS

    ab = p.add_argument_group("A/B benching (with --ab)")
    ab.add_argument("--variants", type=parse_name_list, help="comma-separated modes (default: all of A's)")
    ab.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_AB_REPEATS,
        help="runs of each workspace, alternating ABBA (default: %(default)s)",
    )
    ab.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    add_sweep_args(ab)


def _options(args: argparse.Namespace):
    from qbench.regress import RegressOptions, parse_threshold

    return RegressOptions(
        metric=args.metric,
        threshold=parse_threshold(args.threshold),
        min_abs_ms=args.min_abs_ms,
        alpha=args.alpha,
        min_runs=args.min_runs,
        max_accuracy_drop=args.max_accuracy_drop,
        allow_missing=args.allow_missing,
        accuracy_gate=args.accuracy_gate,
        fail_inconclusive=args.fail_inconclusive,
    )


def _current(args: argparse.Namespace):
    from qbench.regress import load_results

    if args.current is not None:
        return load_results(args.current, "current")
    ws = workspace_of(args)
    if not ws.result_paths():
        raise QBenchError(f"no results in {ws.results_dir}; run 'qbench bench' first or pass --current PATH.")
    return load_results(ws.root, "current")


def _bench_ab(args: argparse.Namespace, accuracy: bool):
    """Bench the two workspaces of --ab alternately; A is the baseline."""
    from qbench.cli.bench import options_from_args
    from qbench.cli.common import progress
    from qbench.pipeline.bench import select_modes
    from qbench.pipeline.quantize import ensure_fp32
    from qbench.preflight import require_device
    from qbench.regress import bench_ab
    from qbench.workspace import Workspace

    if args.baseline or args.baseline_store or args.current:
        raise QBenchError("--ab benches both sides itself; drop --baseline, --baseline-store and --current.")
    ws_a, ws_b = (Workspace(path) for path in args.ab)
    if ws_a.root.resolve() == ws_b.root.resolve():
        raise QBenchError(f"--ab got the same workspace twice ({ws_a.root}); pass main's and the change's.")
    options = options_from_args(args, accuracy=accuracy)
    require_device(options.device)
    for ws in (ws_a, ws_b):
        ws.require_baseline()
        ensure_fp32(ws)
    modes_a = select_modes(ws_a, args.variants)
    # a variant A has and B lacks is benched in A only, and fails the gate as missing in B
    modes_b = select_modes(
        ws_b, [m for m in (args.variants or ws_b.variant_modes()) if m in ws_b.variant_modes()]
    )
    with progress() as bar:
        task = bar.add_task("A/B", total=2 * options.repeats, status="")

        def on_run(side: str, repeat: int, results) -> None:
            bar.update(task, advance=1, description=f"A/B run {repeat + 1}/{options.repeats}", status=side)

        return bench_ab(ws_a, ws_b, {"A": modes_a, "B": modes_b}, options, on_run)


def results_table(report):
    from rich.table import Table

    from qbench.regress import fmt_change, fmt_interval, fmt_noise, fmt_runs, fmt_value

    o = report.options
    worse = "-" if o.metric == "throughput" else "+"  # the direction the threshold is read in
    table = Table(
        title=f"qbench regress ({report.mode}: {o.metric} of run medians, threshold {worse}{o.threshold:.0%})"
    )
    columns = ("variant", "batch", "metric", "baseline -> current", "change", "interval", "noise", "runs")
    for col in (*columns, "verdict", "note"):
        table.add_column(col, justify="right" if col in ("batch", "change", "noise", "runs") else "left")
    for r in report.rows:
        style = VERDICT_STYLE.get(r.verdict, "")
        table.add_row(
            r.variant,
            "-" if r.batch_size is None else str(r.batch_size),
            r.metric,
            f"{fmt_value(r.baseline, r.metric)} -> {fmt_value(r.current, r.metric)}",
            fmt_change(r),
            fmt_interval(r),
            fmt_noise(r),
            fmt_runs(r),
            f"[{style}]{r.verdict}[/]" if style else r.verdict,
            r.note,
        )
    return table


def write_outputs(args: argparse.Namespace, report) -> None:
    from qbench.records.io import write_json, write_text
    from qbench.regress import markdown_summary, write_junit

    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if args.summary_md is not None or step_summary:
        markdown = markdown_summary(report)
        if args.summary_md is not None:
            write_text(args.summary_md, markdown)
        if step_summary:
            with open(step_summary, "a", encoding="utf-8") as fh:  # GitHub's contract: append
                fh.write(markdown + "\n")
    if args.json_out is not None:
        write_json(args.json_out, report.to_dict())
    if args.junit is not None:
        write_junit(report, args.junit)


def preflight(args: argparse.Namespace) -> None:
    """Every output file's folder writable before any result is read or benched: a verdict
    computed after an A/B bench must not be lost to a read-only folder."""
    from qbench.preflight import require_writable_file, require_writable_folder

    for flag, path in (("--summary-md", args.summary_md), ("--json", args.json_out), ("--junit", args.junit)):
        if path is not None:
            require_writable_file(path, flag)
    if args.save_baseline is not None:
        if args.save_baseline.is_dir():  # a store folder: DIR/<fingerprint>.json
            require_writable_folder(args.save_baseline, "--save-baseline")
        else:
            require_writable_file(args.save_baseline, "--save-baseline")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from qbench.regress import compare, load_results, load_stored_baseline, model_sentence, save_baseline

    options = _options(args)
    preflight(args)
    if args.ab is not None:
        baseline, current = _bench_ab(args, accuracy=options.accuracy_gate)
    else:
        if args.baseline is not None and args.baseline_store is not None:
            raise QBenchError("give --baseline PATH or --baseline-store DIR, not both.")
        if args.baseline is None and args.baseline_store is None and args.save_baseline is None:
            raise QBenchError(
                "give --baseline PATH, --baseline-store DIR or --ab WS_A WS_B to compare against "
                "(or --save-baseline PATH to write one)."
            )
        current = _current(args)
        baseline = None
        if args.baseline is not None:
            baseline = load_results(args.baseline, "baseline")
        elif args.baseline_store is not None:
            baseline = load_stored_baseline(args.baseline_store, current)
    out = Console()
    if not out.is_terminal:
        out = Console(width=180)  # a CI log: do not wrap the table at 80 columns
    if args.save_baseline is not None:
        path = save_baseline(current, args.save_baseline)
        out.print(f"baseline saved: {path} ({len(current.results)} variants)")
        if baseline is None:
            return 0

    report = compare(baseline, current, options)
    if args.ab is not None:
        report.mode = f"A/B, {args.repeats} runs a side interleaved in one job"
    if report.warnings and args.strict_machine:
        raise QBenchError(
            f"{report.warnings[0][:-1]}; rerun the baseline on this machine or drop --strict-machine."
        )
    for w in report.warnings:
        out.print(f"[bold yellow]warning:[/] {escape(w)}")
    out.print(results_table(report))
    out.print(escape(model_sentence(report)))
    style = "bold green" if report.passed else "bold red"
    out.print(f"[{style}]regress: {escape(report.verdict_line())}[/]")
    write_outputs(args, report)
    return report.exit_code
