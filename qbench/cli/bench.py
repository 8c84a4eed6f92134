"""``qbench bench``: measure every variant with one harness, each in a fresh process."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from qbench.cli.common import (
    add_workspace_args,
    default,
    joined,
    parse_int_list,
    parse_name_list,
    workspace_of,
)
from qbench.records import BenchOptions, BenchResult


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench",
        help="measure latency, memory, accuracy and size of each variant",
        description=(
            "Measure every variant (or --variants) with one harness: a batch-size sweep of latency "
            "(warm-up, then timed iterations), peak memory, accuracy and agreement with FP32 on the "
            "test split, size on disk. Each variant runs in a fresh process. Writes results/<mode>.json."
        ),
    )
    p.add_argument("--variants", type=parse_name_list, help="comma-separated modes (default: all made)")
    add_sweep_args(p)
    d = BenchOptions()
    add_budget_arg(p, d.max_seconds_per_batch)
    p.add_argument(
        "--warmup-s", type=float, default=d.warmup_s, help="also warm up for at least this many seconds"
    )
    p.add_argument(
        "--min-seconds",
        type=float,
        default=d.min_seconds,
        help="and at least this many seconds of timed iterations",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=d.repeats,
        help="run the whole sweep R times interleaved; median of medians",
    )
    add_device_args(p)
    p.add_argument(
        "--cv-threshold",
        type=float,
        default=d.cv_threshold,
        help="flag a batch size as noisy above this robust CV, IQR / (1.349 x median) "
        f"(default: {d.cv_threshold})",
    )
    p.add_argument(
        "--no-isolate", dest="isolate", action="store_false", help="run all variants in this process"
    )
    p.add_argument("--no-accuracy", dest="accuracy", action="store_false", help="skip the accuracy pass")
    p.add_argument(
        "--profile",
        action="store_true",
        help="after timing, record per-layer times with each runner's own profiler at the smallest "
        "and largest batch size (the timed loop runs without it)",
    )
    p.set_defaults(isolate=d.isolate, accuracy=d.accuracy)
    add_workspace_args(p)
    p.set_defaults(func=run)
    return p


def add_sweep_args(p: argparse.ArgumentParser) -> None:
    """--batch-sizes, --warmup, --iters, --threads: shared by 'qbench bench' and 'qbench run'."""
    sizes, warmup, iters = (default(BenchOptions, n) for n in ("batch_sizes", "warmup", "iters"))
    p.add_argument(
        "--batch-sizes",
        type=parse_int_list,
        default=sizes,
        help=f"comma-separated batch sizes (default: {joined(sizes)})",
    )
    p.add_argument(
        "--warmup", type=int, default=warmup, help=f"warm-up calls per batch size (default: {warmup})"
    )
    p.add_argument(
        "--iters", type=int, default=iters, help=f"at least this many timed iterations (default: {iters})"
    )
    p.add_argument("--threads", type=int, help="intra-op threads (torch, ONNX Runtime); default: torch's")


def add_device_args(p: argparse.ArgumentParser) -> None:
    """--device, --cuda-graph, --tf32: shared by 'qbench bench' and 'qbench run'."""
    d = BenchOptions()
    p.add_argument("--device", default=d.device, help=f"cpu, cuda or cuda:N (default: {d.device})")
    p.add_argument(
        "--cuda-graph",
        action="store_true",
        help="GPU: capture each batch size's call as a CUDA graph and time its replay (torch and TensorRT runners)",
    )
    p.add_argument(
        "--tf32",
        type=_on_off,
        default=d.tf32,
        metavar="on|off",
        help="GPU: TF32 tensor-core math for fp32 matmuls and convolutions (default: each back-end's own; recorded)",
    )


def _on_off(text: str) -> bool:
    if text.lower() not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")
    return text.lower() == "on"


def add_budget_arg(p: argparse.ArgumentParser, budget: float | None) -> None:
    """--max-seconds-per-batch; 'qbench bench' has no budget by default, 'qbench run' has one."""
    p.add_argument(
        "--max-seconds-per-batch",
        type=_budget,
        default=budget,
        help="stop timing a batch size after this many seconds once it has 10 iterations, and cut its "
        f"warm-up to a quarter of it; 0: no budget (default: {budget or 0})",
    )


def _budget(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("seconds must not be negative")
    return value or None


def options_from_args(args: argparse.Namespace, **overrides: Any) -> BenchOptions:
    """BenchOptions from the parsed flags named like its fields (the rest keep their defaults)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(BenchOptions) if hasattr(args, f.name)}
    return BenchOptions(**{**given, **overrides})


def print_summary(out, results: list[BenchResult]) -> None:
    """The latency table, then each variant's roofline and energy lines (qbench bench and run)."""
    from qbench.reports.roofline import summary_lines

    out.print(summary_table(results))
    out.print("\n".join(summary_lines(results)), markup=False, soft_wrap=True)


def summary_table(results: list[BenchResult]):
    from rich.table import Table

    table = Table(title="qbench bench (median latency per batch)", show_lines=False)
    sizes = sorted({s.batch_size for r in results for s in r.latency})
    show = [b for b in (sizes[:1] + sizes[-1:]) if b] if sizes else []
    for col in [
        "variant",
        "status",
        "top-1%",
        "top-5%",
        "agree%",
        *[f"b{b} ms" for b in dict.fromkeys(show)],
    ]:
        table.add_column(col)
    for col in ("best img/s", "iters", "peak RSS MB", "size MB", "notes"):
        table.add_column(col)
    for r in results:
        acc = r.accuracy
        agree = acc.agreement.top1_agreement if acc and acc.agreement else None
        lat = [r.latency_at(b) for b in dict.fromkeys(show)]
        best = max((s.median_throughput_ips for s in r.latency), default=None)
        table.add_row(
            r.mode,
            r.status,
            _fmt(acc.top1 if acc else None, 2),
            _fmt(acc.top5 if acc else None, 2),
            _fmt(agree, 2),
            *[_fmt(s.median_ms if s else None, 3) for s in lat],
            _fmt(best, 1),
            iterations_text(r),
            _fmt(r.memory.rss_peak_mb, 1),
            _fmt(r.size_mb, 2),
            "; ".join(_notes(r)),
        )
    return table


def iterations_text(r: BenchResult) -> str:
    """Timed iterations per batch size: '100', or '12-100*' when the time budget cut some short."""
    counts = [s.n_samples for s in r.latency]
    if not counts:
        return "-"
    low, high = min(counts), max(counts)
    text = str(low) if low == high else f"{low}-{high}"
    return text + ("*" if any(s.stopped_by == "time-budget" for s in r.latency) else "")


def _notes(r: BenchResult) -> list[str]:
    notes = [r.skip_reason] if r.skip_reason else []
    if r.emulated:
        notes.append(r.emulated.split(",")[0])
    budget = [s for s in r.latency if s.stopped_by == "time-budget"]
    if budget:
        notes.append(
            f"* {budget[0].time_budget_s:g} s budget at batch {','.join(str(s.batch_size) for s in budget)}"
        )
    noisy = [str(s.batch_size) for s in r.latency if s.noisy]
    if noisy:
        notes.append(f"noisy at batch {','.join(noisy)}")
    return notes


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def preflight(ws, options: BenchOptions) -> None:
    """Before any variant is timed: results/ writable, the device present, and each batch size's
    FP32 input batch within this machine's memory (from the baseline's model and image size)."""
    from qbench.cli.common import require_batches_fit, require_workspace_writable
    from qbench.preflight import require_device

    ws.require_baseline()
    # the bench writes results/, and variants/fp32/ when the FP32 variant is not there yet
    fp32 = () if ws.variant_json("fp32").is_file() else (ws.variants_dir,)
    require_workspace_writable(ws, ws.results_dir, *fp32)
    require_device(options.device)
    require_batches_fit(ws, options.batch_sizes, "--batch-sizes")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from qbench import pipeline
    from qbench.cli.common import progress

    options = options_from_args(args)
    ws = workspace_of(args)
    preflight(ws, options)
    with progress() as bar:
        results = pipeline.bench(ws, options, bar)
    out = Console()
    if not out.is_terminal:
        out = Console(width=160)  # a log file or pipe: do not wrap the table at 80 columns
    print_summary(out, results)
    out.print(f"results: {ws.results_dir}")
    return exit_status(results)


def exit_status(results: list[BenchResult]) -> int:
    """0: nothing failed; 2: every failure was bad input (its sentence names the fix); 1: a crash."""
    failed = [r for r in results if r.status == "failed"]
    if not failed:
        return 0
    return 2 if all(r.input_error for r in failed) else 1
