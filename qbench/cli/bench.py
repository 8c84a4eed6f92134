"""``qbench bench``: measure every variant with one harness, each in a fresh process."""

from __future__ import annotations

import argparse
from typing import Any

from qbench.cli.common import add_workspace_args, parse_int_list, parse_name_list, workspace_of
from qbench.errors import QBenchError
from qbench.harness.options import DEFAULT_BATCH_SIZES, BenchOptions
from qbench.harness.result import BenchResult
from qbench.workspace import Workspace


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
    p.add_argument(
        "--batch-sizes",
        type=parse_int_list,
        default=list(DEFAULT_BATCH_SIZES),
        help="comma-separated batch sizes (default: 1,8,16,32,64)",
    )
    p.add_argument("--warmup", type=int, default=10, help="warm-up calls per batch size (default: 10)")
    p.add_argument("--warmup-s", type=float, default=0.0, help="also warm up for at least this many seconds")
    p.add_argument(
        "--iters", type=int, default=100, help="at least this many timed iterations (default: 100)"
    )
    p.add_argument(
        "--min-seconds", type=float, default=0.0, help="and at least this many seconds of timed iterations"
    )
    p.add_argument(
        "--repeats", type=int, default=1, help="run the whole sweep R times interleaved; median of medians"
    )
    p.add_argument("--threads", type=int, help="intra-op threads (torch, ONNX Runtime); default: torch's")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument(
        "--cv-threshold", type=float, default=0.10, help="flag a batch size as noisy above this CV"
    )
    p.add_argument(
        "--no-isolate", dest="isolate", action="store_false", help="run all variants in this process"
    )
    p.add_argument("--no-accuracy", dest="accuracy", action="store_false", help="skip the accuracy pass")
    add_workspace_args(p)
    p.set_defaults(func=run)
    return p


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    return BenchOptions(
        variants=args.variants,
        batch_sizes=args.batch_sizes,
        warmup=args.warmup,
        warmup_s=args.warmup_s,
        iters=args.iters,
        min_seconds=args.min_seconds,
        repeats=args.repeats,
        threads=args.threads,
        device=args.device,
        cv_threshold=args.cv_threshold,
        isolate=args.isolate,
        accuracy=args.accuracy,
    )


def check_device(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise QBenchError("--device cuda was given but torch sees no CUDA device here; use --device cpu.")


def ensure_fp32(ws: Workspace) -> None:
    """variants/fp32 is the reference every agreement is measured against: make it if absent."""
    if ws.variant_json("fp32").is_file():
        return
    from qbench.cli.quantize import quantize_modes
    from qbench.exporters.base import QuantizeOptions

    quantize_modes(ws, ["fp32"], QuantizeOptions())


def select_modes(ws: Workspace, wanted: list[str] | None) -> list[str]:
    available = ws.variant_modes()
    if not wanted:
        return available
    unknown = [m for m in wanted if m not in available]
    if unknown:
        raise QBenchError(
            f"no variant {', '.join(repr(m) for m in unknown)} in {ws.variants_dir}; available: "
            f"{', '.join(available) or 'none'} (make one with 'qbench quantize --mode {unknown[0]}')."
        )
    return sorted(dict.fromkeys(wanted), key=lambda m: (m != "fp32", wanted.index(m)))


def bench_workspace(ws: Workspace, options: BenchOptions, progress: Any = None) -> list[BenchResult]:
    """Bench the workspace's variants and write results/<mode>.json; ``progress``: a rich Progress."""
    from qbench.harness.isolation import bench_modes

    ws.require_baseline()
    check_device(options.device)
    ensure_fp32(ws)
    modes = select_modes(ws, options.variants)
    per_run = len(options.batch_sizes)
    task = None
    if progress is not None:
        task = progress.add_task("bench", total=len(modes) * per_run * options.repeats, status="")

    def on_batch(mode: str, batch_size: int) -> None:
        if task is not None:
            progress.update(task, advance=1, description=f"bench {mode}", status=f"batch {batch_size}")

    def on_variant(mode: str, repeat: int, result: BenchResult) -> None:
        if task is None:
            return
        done = sum(1 for _ in result.latency)
        status = result.status if result.status == "ok" else f"{result.status}: {result.skip_reason or ''}"
        progress.update(task, advance=per_run - done, description=f"bench {mode}", status=status)
        if result.status != "ok":  # its later repeats will not run: count them as done
            progress.update(task, advance=per_run * (options.repeats - repeat - 1))

    return bench_modes(ws, modes, options, on_batch=on_batch, on_variant=on_variant)


def summary_table(results: list[BenchResult]):
    from rich.table import Table

    table = Table(title="qbench bench (median latency per batch)", show_lines=False)
    sizes = sorted({s.batch_size for r in results for s in r.latency})
    show = [b for b in (sizes[:1] + sizes[-1:]) if b] if sizes else []
    for col in ["variant", "status", "top-1%", "agree%", *[f"b{b} ms" for b in dict.fromkeys(show)]]:
        table.add_column(col)
    for col in ("best img/s", "peak RSS MB", "size MB", "notes"):
        table.add_column(col)
    for r in results:
        acc = r.accuracy
        agree = acc.agreement.top1_agreement if acc and acc.agreement else None
        lat = [r.latency_at(b) for b in dict.fromkeys(show)]
        best = max((s.throughput_ips for s in r.latency), default=None)
        noisy = [str(s.batch_size) for s in r.latency if s.noisy]
        note = r.skip_reason or (f"noisy at batch {','.join(noisy)}" if noisy else "")
        table.add_row(
            r.mode,
            r.status,
            _fmt(acc.top1 if acc else None, 2),
            _fmt(agree, 2),
            *[_fmt(s.median_ms if s else None, 3) for s in lat],
            _fmt(best, 1),
            _fmt(r.memory.rss_peak_mb, 1),
            _fmt(r.size_mb, 2),
            note[:60],
        )
    return table


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from qbench.cli.common import progress

    options = options_from_args(args)
    ws = workspace_of(args)
    with progress() as bar:
        results = bench_workspace(ws, options, bar)
    out = Console()
    if not out.is_terminal:
        out = Console(width=160)  # a log file or pipe: do not wrap the table at 80 columns
    out.print(summary_table(results))
    out.print(f"results: {ws.results_dir}")
    return 1 if any(r.status == "failed" for r in results) else 0
