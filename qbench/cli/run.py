"""qbench run: the whole pipeline with defaults (baseline -> quantize -> bench -> compare).

Offline on the embedded digits data set unless told otherwise. Steps whose outputs are up
to date are skipped (a result newer than its variant, a variant newer than the baseline),
so an interrupted run resumes where it stopped; --force redoes everything.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from qbench.cli.common import (
    add_workspace_args,
    console,
    parse_int_list,
    parse_name_list,
    progress,
    workspace_of,
)


def add_parser(sub) -> None:
    from qbench.cli.baseline import add_data_args

    p = sub.add_parser(
        "run",
        help="the whole pipeline on defaults: train, convert, bench, report",
        description="Train the FP32 baseline (AlexNet on the embedded digits set by default), convert it to every "
        "variant that runs here, bench each in its own process and write the text and HTML reports.",
    )
    p.add_argument("--model", default="alexnet", help="architecture (default: alexnet)")
    add_data_args(p)
    p.add_argument("--epochs", type=int, help="training epochs (default: 10)")
    p.add_argument("--batch-size", type=int, help="training batch size (default: 32 on digits, else 64)")
    p.add_argument("--max-batches", type=int, help="cap training batches per epoch (smoke runs)")
    p.add_argument(
        "--modes",
        type=parse_name_list,
        default=["all"],
        help="variants to make, comma-separated (default: all)",
    )
    p.add_argument("--qat-epochs", type=int, default=1, help="QAT fine-tuning epochs (default: 1)")
    p.add_argument(
        "--qat-max-batches",
        type=int,
        default=10,
        help="QAT batches per epoch (default: 10, to keep run short)",
    )
    p.add_argument(
        "--calib-batches", type=int, default=8, help="calibration batches of 32 images (default: 8)"
    )
    p.add_argument(
        "--batch-sizes",
        type=parse_int_list,
        default=[1, 8, 16, 32, 64],
        help="bench sweep (default: 1,8,16,32,64)",
    )
    p.add_argument("--warmup", type=int, default=10, help="warm-up passes per batch size (default: 10)")
    p.add_argument("--iters", type=int, default=100, help="timed iterations per batch size (default: 100)")
    p.add_argument("--threads", type=int, help="intra-op threads (default: torch's)")
    p.add_argument(
        "--report", type=parse_name_list, default=["text", "html"], help="report formats (default: text,html)"
    )
    p.add_argument("--force", action="store_true", help="redo every step even if its outputs are up to date")
    add_workspace_args(p)
    p.set_defaults(func=run)


def _newer(path: Path, than: Path) -> bool:
    return path.is_file() and than.is_file() and path.stat().st_mtime >= than.stat().st_mtime


def run(args: argparse.Namespace) -> int:
    from qbench.baselines.pipeline import make_baseline
    from qbench.cli.baseline import request_from_args
    from qbench.cli.bench import bench_workspace, summary_table
    from qbench.cli.quantize import describe, quantize_modes, resolve_modes
    from qbench.exporters.base import QuantizeOptions
    from qbench.harness.options import BenchOptions
    from qbench.reports.writers import write_reports
    from qbench.workspace import read_json

    ws = workspace_of(args)
    out = console()
    start = time.perf_counter()
    # validate every option before the long steps start
    modes = resolve_modes(args.modes)
    qopts = QuantizeOptions(
        calib_batches=args.calib_batches,
        qat_epochs=args.qat_epochs,
        qat_max_batches=args.qat_max_batches,
        seed=args.seed,
    )
    bopts = BenchOptions(
        batch_sizes=args.batch_sizes, warmup=args.warmup, iters=args.iters, threads=args.threads
    )
    request = request_from_args(args)

    out.rule(f"[bold]1/4 baseline[/bold] -> {ws.baseline_dir}")
    if ws.model_path.is_file() and ws.train_json.is_file() and not args.force:
        out.print("baseline is up to date (use --force to retrain)")
    else:
        with progress() as bar:
            record = make_baseline(ws, request, progress=bar)
        m = record["metrics"]
        out.print(
            f"trained {m['epochs_trained']} epochs in {m['train_seconds']:.0f} s: test top-1 {m['test_acc']:.2f}%"
        )

    out.rule("[bold]2/4 quantize[/bold]")
    todo = [
        m
        for m in modes
        if args.force
        or not _newer(ws.variant_json(m), ws.model_path)
        or read_json(ws.variant_json(m), "variant record").get("status") == "failed"
    ]
    if args.qat_max_batches and "qat" in todo:
        out.print(
            f"QAT: {args.qat_epochs} epoch(s) of at most {args.qat_max_batches} batches (raise --qat-max-batches for more)"
        )
    if todo:
        with progress() as bar:
            records = quantize_modes(ws, todo, qopts, progress=bar)
        for rec in records:
            out.print(f"  {describe(rec)}")
    out.print(f"variants up to date: {', '.join(m for m in modes if m not in todo) or 'none'}")

    out.rule("[bold]3/4 bench[/bold]")
    stale = [
        m
        for m in ws.variant_modes()
        if m in modes and (args.force or not _newer(ws.result_path(m), ws.variant_json(m)))
    ]
    if stale:
        bopts.variants = stale
        with progress() as bar:
            bench_workspace(ws, bopts, bar)
    from qbench.harness.result import BenchResult

    results = [BenchResult.from_json(p) for p in ws.result_paths() if p.stem in modes]
    out.print(summary_table(results))

    out.rule("[bold]4/4 report[/bold]")
    written = write_reports(ws, args.report)
    for fmt, paths in written.items():
        if fmt == "figures":
            continue
        for path in paths:
            out.print(f"  {fmt:<6} {path}")
    out.print(f"[bold green]done[/bold green] in {time.perf_counter() - start:.0f} s; workspace {ws.root}")
    return 0
