"""qbench run: the whole pipeline with defaults (baseline -> quantize -> bench -> compare).

Offline on the embedded digits data set unless told otherwise. Steps whose outputs are up
to date are skipped (see qbench.pipeline.run), so an interrupted run resumes where it
stopped; --force redoes everything.
"""

from __future__ import annotations

import argparse
import time

from qbench.cli.common import (
    add_workspace_args,
    console,
    joined,
    parse_name_list,
    progress,
    workspace_of,
)


def add_parser(sub) -> None:
    from qbench.cli.baseline import add_data_args, add_model_arg, add_training_length_args
    from qbench.cli.bench import add_budget_arg, add_device_args, add_sweep_args
    from qbench.pipeline.run import RunOptions

    d = RunOptions()
    p = sub.add_parser(
        "run",
        help="the whole pipeline on defaults: train, convert, bench, report",
        description="Train the FP32 baseline (AlexNet on the embedded digits set by default), convert it to every "
        "variant that runs here, bench each in its own process and write the text and HTML reports.",
    )
    add_model_arg(p)
    add_data_args(p)
    add_training_length_args(p)
    p.add_argument(
        "--modes",
        type=parse_name_list,
        default=d.modes,
        help=f"variants to make, comma-separated (default: {joined(d.modes)})",
    )
    q = d.quantize
    p.add_argument(
        "--qat-epochs",
        type=int,
        default=q.qat_epochs,
        help=f"QAT fine-tuning epochs (default: {q.qat_epochs})",
    )
    p.add_argument(
        "--qat-max-batches",
        type=int,
        default=q.qat_max_batches,
        help=f"QAT batches per epoch (default: {q.qat_max_batches}, to keep run short; 0: whole epochs)",
    )
    p.add_argument(
        "--calib-batches",
        type=int,
        default=q.calib_batches,
        help=f"calibration batches of {q.calib_batch_size} images (default: {q.calib_batches})",
    )
    add_sweep_args(p)
    add_budget_arg(p, d.bench.max_seconds_per_batch)
    add_device_args(p)  # --device: training, conversion and bench alike
    p.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="leave out the per-layer profiles (taken by default after each variant's timing)",
    )
    p.set_defaults(profile=d.bench.profile)
    p.add_argument(
        "--report",
        type=parse_name_list,
        default=d.formats,
        help=f"report formats (default: {joined(d.formats)})",
    )
    p.add_argument("--force", action="store_true", help="redo every step even if its outputs are up to date")
    add_workspace_args(p)
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace):
    from qbench.pipeline.run import RunOptions
    from qbench.records import BenchOptions, QuantizeOptions

    return RunOptions(
        modes=args.modes,
        quantize=QuantizeOptions(
            calib_batches=args.calib_batches,
            qat_epochs=args.qat_epochs,
            qat_max_batches=args.qat_max_batches or None,  # 0: no cap
            seed=args.seed,
            device=args.device,
            batch_sizes=args.batch_sizes,  # the engines' optimization profiles follow the sweep
        ),
        bench=BenchOptions(
            device=args.device,
            cuda_graph=args.cuda_graph,
            tf32=args.tf32,
            batch_sizes=args.batch_sizes,
            warmup=args.warmup,
            iters=args.iters,
            threads=args.threads,
            max_seconds_per_batch=args.max_seconds_per_batch,
            profile=args.profile,
            profile_emulated=RunOptions().bench.profile_emulated,
        ),
        formats=args.report,
        force=args.force,
    )


def preflight(args: argparse.Namespace, ws, request, options) -> None:
    """Everything the run will need, checked before its first step: report formats, the
    workspace's folders writable, the model's image size and the bench's batch sizes within
    this machine's memory, the data readable (every image of a folder data set)."""
    from qbench.cli.baseline import preflight as baseline_preflight
    from qbench.reports.writers import parse_formats

    parse_formats(options.formats)
    folders = (ws.baseline_dir, ws.variants_dir, ws.results_dir, ws.reports_dir)
    baseline_preflight(args, request, ws, folders)
    # the cheap checks above come first: from here on torch is imported
    from qbench import pipeline
    from qbench.baselines.pipeline import check_request_fits
    from qbench.baselines.sizing import check_batch_sizes
    from qbench.data.registry import load_data

    pipeline.resolve_modes(options.modes)
    check_request_fits(request)
    check_batch_sizes(request.model, request.data.image_size, 2, options.bench.batch_sizes)
    load_data(request.data)


def run(args: argparse.Namespace) -> int:
    from qbench import pipeline
    from qbench.cli.baseline import request_from_args
    from qbench.cli.bench import print_summary

    ws = workspace_of(args)
    out = console()
    start = time.perf_counter()
    # both validate every option before the long steps start
    options = options_from_args(args)
    request = request_from_args(args)
    preflight(args, ws, request, options)
    hooks = pipeline.RunHooks(
        step=lambda title: out.rule(f"[bold]{title}[/bold]"),
        note=lambda text: out.print(text, markup=False),
        results=lambda results: print_summary(out, results),
        progress=progress,
    )
    outcome = pipeline.run(ws, request, options, hooks)
    for fmt, paths in outcome.reports.items():
        if fmt == "figures":
            continue
        for path in paths:
            out.print(f"  {fmt:<6} {path}")
    failed = [r.mode for r in outcome.results if r.status == "failed"]
    if failed:
        from qbench.cli.bench import exit_status

        out.print(f"[bold red]failed[/bold red]: {', '.join(failed)} (see the notes above and the report)")
        return exit_status(outcome.results)
    out.print(f"[bold green]done[/bold green] in {time.perf_counter() - start:.0f} s; workspace {ws.root}")
    return 0
