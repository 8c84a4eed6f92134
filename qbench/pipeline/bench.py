"""The bench step of the library API: measure every variant with one harness."""

from __future__ import annotations

from typing import Any

from qbench.errors import QBenchError
from qbench.pipeline.quantize import REFERENCE_MODE, ensure_fp32
from qbench.records import BenchOptions, BenchResult
from qbench.workspace import Workspace


def check_device(device: str) -> None:
    """Refuse a CUDA bench up front where torch sees no CUDA device."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise QBenchError("--device cuda was given but torch sees no CUDA device here; use --device cpu.")


def select_modes(ws: Workspace, wanted: list[str] | None) -> list[str]:
    """The variants to bench: ``wanted`` (each must exist), else every variant; FP32 first."""
    available = ws.variant_modes()
    if not wanted:
        return available
    unknown = [m for m in wanted if m not in available]
    if unknown:
        raise QBenchError(
            f"no variant {', '.join(repr(m) for m in unknown)} in {ws.variants_dir}; available: "
            f"{', '.join(available) or 'none'} (make one with 'qbench quantize --mode {unknown[0]}')."
        )
    return sorted(dict.fromkeys(wanted), key=lambda m: (m != REFERENCE_MODE, wanted.index(m)))


def bench(ws: Workspace, options: BenchOptions, progress: Any = None) -> list[BenchResult]:
    """Bench the workspace's variants, each in a fresh process unless ``options.isolate`` is off,
    and write results/<mode>.json as each one is measured (a failure never replaces a good record:
    it goes to results/failed/<mode>.json). The records come back in order, failures included.
    ``progress``: a rich Progress (or None)."""
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
        status = result.status if result.ok else f"{result.status}: {result.skip_reason or ''}"
        progress.update(
            task, advance=per_run - len(result.latency), description=f"bench {mode}", status=status
        )
        if not result.ok:  # its later repeats will not run: count them as done
            progress.update(task, advance=per_run * (options.repeats - repeat - 1))

    return bench_modes(ws, modes, options, on_batch=on_batch, on_variant=on_variant)
