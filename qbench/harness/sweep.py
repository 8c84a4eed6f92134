"""Bench one variant in this process: load, batch sweep, memory, accuracy, size, facts, env.

Order matters for the memory numbers: the data and inputs exist before the "before load"
reading, so ``runtime_mb`` (peak during inference minus before load) is what the model and
its inference cost, not the data set; the FP32 reference logits, the model summary and the
environment are gathered after the measured part.
"""

from __future__ import annotations

import gc
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from qbench import capabilities
from qbench.harness import accuracy as acc
from qbench.harness import efficiency, memory, stats
from qbench.harness.options import BenchOptions
from qbench.harness.result import BenchResult, MemoryStats
from qbench.harness.timing import time_call
from qbench.workspace import Workspace, read_json

# called as progress(mode, batch_size) after each batch size is measured
ProgressFn = Callable[[str, int], None]


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def skip_reason(variant: dict[str, Any], options: BenchOptions) -> str | None:
    if variant.get("status") == "skipped":
        return variant.get("skip_reason") or "skipped at conversion"
    if variant.get("status") not in (None, "ok"):
        return (
            f"variant status is {variant.get('status')!r}; rerun 'qbench quantize --mode {variant['mode']}'"
        )
    requires = tuple(variant.get("requires") or ())
    if options.device.startswith("cuda"):
        requires = ("cuda", *requires)
    reason = capabilities.first_missing(requires)
    if reason:
        return reason
    import qbench.runners.builtin  # noqa: F401
    from qbench.runners.base import RUNNERS

    if variant.get("runner") not in RUNNERS:
        return f"runner {variant.get('runner')!r} is not available in this qbench installation"
    return None


def baseline_info(ws: Workspace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model facts (parameters, FLOPs as MACs, FP32 size) and the checkpoint metadata."""
    from qbench.baselines.checkpoint import load_checkpoint
    from qbench.baselines.summary import summarize

    model, meta = load_checkpoint(ws.model_path)
    summary = summarize(model, int(meta["input_size"]), meta["model"], int(meta["num_classes"]))
    meta = {k: v for k, v in meta.items() if k not in ("format", "schema_version")}
    return {
        "name": meta["model"],
        "num_classes": int(meta["num_classes"]),
        "input_size": int(meta["input_size"]),
        "params": summary.total_params,
        "trainable_params": summary.trainable_params,
        "flops": summary.flops,
        "flops_unit": "MACs (multiply-accumulates of conv and linear layers, as the reference report)",
        "fp32_size_bytes": summary.size_bytes,
    }, meta


def artifact_bytes(path: Path) -> int | None:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return None


def tiled_batch(images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``batch_size`` real test images, repeating them when the split is smaller."""
    reps = -(-batch_size // len(images))
    return images.repeat(reps, 1, 1, 1)[:batch_size].contiguous()


def _test_split(meta: dict[str, Any]):
    from qbench.data.registry import data_config_from_meta, load_data

    return load_data(data_config_from_meta(meta))


def bench_variant(
    ws: Workspace,
    mode: str,
    options: BenchOptions,
    *,
    facts: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    machine_env: dict[str, Any] | None = None,
    with_accuracy: bool | None = None,
    progress: ProgressFn | None = None,
) -> BenchResult:
    """Measure ``mode``; a variant that cannot run here comes back as skipped, never raised.

    ``facts`` and ``meta`` (from :func:`baseline_info`) are computed here when not given;
    ``machine_env`` (``qbench.env.capture()`` from the parent) saves re-probing the machine.
    """
    variant = read_json(ws.variant_json(mode), "variant record")
    result = BenchResult(
        mode=mode,
        status="ok",
        runner=variant.get("runner"),
        device=options.device,
        variant=variant,
        settings=_settings(options),
        created=now(),
    )
    reason = skip_reason(variant, options)
    if reason:
        result.status, result.skip_reason = "skipped", reason
        result.notes.append(f"{mode}: skipped: {reason}")
        return result
    if facts is None or meta is None:
        facts, meta = baseline_info(ws)
    with_accuracy = options.accuracy if with_accuracy is None else with_accuracy
    _measure(ws, result, variant, meta, options, with_accuracy, progress)
    result.model = facts
    result.efficiency = efficiency.annotate(result.latency, result.model.get("flops"), variant)
    result.size_bytes = artifact_bytes(ws.variant_dir(mode) / variant["artifact"])
    from qbench import env

    result.env = env.capture(machine_env)
    return result


def _settings(options: BenchOptions) -> dict[str, Any]:
    return {
        **options.to_dict(),
        "statistics": stats.CONVENTIONS,
        "timer": "CUDA events + one synchronize per iteration" if options.device != "cpu" else "perf_counter",
    }


def _measure(ws, result: BenchResult, variant, meta, options: BenchOptions, with_accuracy: bool, progress):
    from qbench.runners.base import create_runner

    data = _test_split(meta)
    images = torch.stack([data.test[i][0] for i in range(min(len(data.test), max(options.batch_sizes)))])
    threads = options.threads or torch.get_num_threads()
    torch.set_num_threads(threads)

    gc.collect()
    mem = MemoryStats(watcher_interval_ms=options.watcher_interval_ms)
    mem.rss_before_load_mb = memory.rss_bytes() / memory.MB
    runner = create_runner(variant, ws.variant_dir(result.mode), device=options.device, threads=threads)
    load_start = time.perf_counter()
    runner.load()
    result.settings["load_seconds"] = time.perf_counter() - load_start
    mem.rss_after_load_mb = memory.rss_bytes() / memory.MB
    try:
        memory.reset_gpu_peak(options.device)
        cuda = options.device.startswith("cuda")
        watch = memory.PeakWatcher(interval_s=options.watcher_interval_ms / 1e3, sample_when_hwm=False)
        with watch as watcher:
            for bs in options.batch_sizes:
                native = runner.prepare(tiled_batch(images, bs))
                run = time_call(
                    lambda native=native: runner.infer(native),
                    runner.sync,
                    warmup=options.warmup,
                    warmup_s=options.warmup_s,
                    iters=options.iters,
                    min_seconds=options.min_seconds,
                    cuda=cuda,
                    max_iters=options.max_iters,
                )
                lat = stats.from_run(run, bs, options.cv_threshold)
                if not options.keep_samples:
                    lat.samples_ms = []
                result.latency.append(lat)
                del native
                if progress:
                    progress(result.mode, bs)
        mem.rss_peak_mb = watcher.peak / memory.MB
        mem.runtime_mb = mem.rss_peak_mb - mem.rss_before_load_mb
        mem.watcher_interval_ms = watcher.achieved_interval_ms  # None: no sampling thread ran
        result.notes.append(
            "peak RSS: kernel VmHWM, reset before the sweep (no sampling thread competes with the timed loop)"
            if watcher.hwm_used
            else "peak RSS: sampling watcher thread"
        )
        gpu, notes = memory.gpu_memory(options.device)
        for key, value in gpu.items():
            setattr(mem, key, value)
        result.notes.extend(notes)
        result.memory = mem
        result.runner_info = {**runner.describe(), "threads": threads}
        if with_accuracy:
            logits, labels = acc.collect_logits(runner, data.test, options.accuracy_batch_size)
    finally:
        runner.close()
        gc.collect()
    if with_accuracy:
        acc.save_logits(ws, result.mode, logits)
        reference = logits if result.mode == "fp32" else _fp32_logits(ws, options, data.test, len(labels))
        if reference is None:
            result.notes.append("agreement with FP32: n/a (the fp32 variant cannot run here)")
        result.accuracy = acc.accuracy_stats(logits, labels, data.class_names, reference)


def _fp32_logits(ws: Workspace, options: BenchOptions, test_set, n: int):
    """fp32's saved logits; computed now (after this variant's measurement) when missing."""
    saved = acc.load_logits(ws, "fp32", n)
    if saved is not None:
        return saved
    from qbench.runners.base import create_runner

    if ws.variant_json("fp32").is_file():
        variant, vdir = read_json(ws.variant_json("fp32"), "variant record"), ws.variant_dir("fp32")
    else:  # the baseline checkpoint is fp32's artifact
        variant = {"mode": "fp32", "runner": "torch", "format": "checkpoint", "dtype": "float32"}
        variant["artifact"], vdir = ws.model_path.name, ws.baseline_dir
    if skip_reason(variant, options):
        return None
    runner = create_runner(variant, vdir, device=options.device, threads=options.threads)
    runner.load()
    try:
        logits, _ = acc.collect_logits(runner, test_set, options.accuracy_batch_size)
    finally:
        runner.close()
    acc.save_logits(ws, "fp32", logits)
    return logits


def failed_result(mode: str, options: BenchOptions, error: BaseException | str) -> BenchResult:
    tail = error if isinstance(error, str) else "".join(traceback.format_exception(error))
    tail = "\n".join(tail.strip().splitlines()[-15:])
    last = tail.splitlines()[-1] if tail else "unknown error"
    return BenchResult(
        mode=mode,
        status="failed",
        skip_reason=last[:300],
        device=options.device,
        settings=_settings(options),
        notes=[f"{mode}: failed: {last[:300]}", tail],
        created=now(),
    )
