"""Bench one variant in this process: load, batch sweep, memory, accuracy, size, facts, env.

Order matters for the memory numbers: the data and inputs exist before the "before load"
reading, so ``runtime_mb`` (peak during inference minus before load) is what the model and
its inference cost, not the data set; the FP32 reference logits, the model summary and the
environment are gathered after the measured part.
"""

from __future__ import annotations

import gc
import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from qbench import capabilities
from qbench.errors import QBenchError
from qbench.harness import accuracy as acc
from qbench.harness import efficiency, energy, gpu_telemetry, memory, roofline, stats
from qbench.harness.timing import time_call
from qbench.records import (
    BaselineRef,
    BenchOptions,
    BenchResult,
    BenchSettings,
    DataConfig,
    EnvRecord,
    MemoryStats,
    ModelFacts,
    VariantRecord,
)
from qbench.records.variant import device_kind
from qbench.workspace import Workspace

# called as progress(mode, batch_size) after each batch size is measured
ProgressFn = Callable[[str, int], None]
FP32_MODE = "fp32"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def skip_reason(variant: VariantRecord, options: BenchOptions) -> str | None:
    if variant.status == "skipped":
        return variant.skip_reason or "skipped at conversion"
    if variant.status != "ok":
        return f"variant status is {variant.status!r}; rerun 'qbench quantize --mode {variant.mode}'"
    from qbench.runners.base import RUNNERS  # the registry imports its built-in runners on lookup

    if variant.runner not in RUNNERS:
        return f"runner {variant.runner!r} is not available in this qbench installation"
    runner = RUNNERS.get(variant.runner)
    reason = device_mismatch(variant, runner.devices, options.device)
    if reason:
        return reason
    if options.cuda_graph and not runner.supports_cuda_graph:
        return f"the {variant.runner} runner cannot replay CUDA graphs; bench {variant.mode} without --cuda-graph"
    requires = tuple(variant.requires)
    if options.device.startswith("cuda"):
        requires = ("cuda", *requires)
    return capabilities.first_missing(requires)


def device_mismatch(variant: VariantRecord, runner_devices: tuple[str, ...], device: str) -> str | None:
    """Why ``variant`` does not run on ``device`` (a GPU-only engine under --device cpu, a CPU-only
    quantized engine under --device cuda), or None: skipped with this reason, never failed or
    silently run elsewhere."""
    kind = device_kind(device)
    runs_on = [d for d in variant.devices if d in runner_devices]
    if kind in runs_on:
        return None
    other = runs_on[0] if runs_on else None
    where = " and ".join(runs_on) or "no device this runner supports"
    fix = f"; bench it with --device {other}" if other else ""
    return f"{variant.mode} runs on {where} only, not on {device}{fix}"


def baseline_info(ws: Workspace) -> tuple[ModelFacts, dict[str, Any]]:
    """The model facts (parameters, FLOPs as MACs, FP32 size) and the checkpoint metadata."""
    from qbench.baselines.checkpoint import load_checkpoint
    from qbench.baselines.summary import summarize

    model, meta = load_checkpoint(ws.model_path)
    summary = summarize(model, int(meta["input_size"]), meta["model"], int(meta["num_classes"]))
    meta = {k: v for k, v in meta.items() if k not in ("format", "schema_version")}
    facts = ModelFacts(
        name=meta["model"],
        num_classes=int(meta["num_classes"]),
        input_size=int(meta["input_size"]),
        total_params=summary.total_params,
        trainable_params=summary.trainable_params,
        flops=summary.flops,
        fp32_size_bytes=summary.size_bytes,
        activation_elements=roofline.activation_elements(model, int(meta["input_size"])),
    )
    return facts, meta


def checkpoint_variant(ws: Workspace, meta: dict[str, Any]) -> tuple[VariantRecord, Path]:
    """fp32 as the baseline checkpoint itself, for a workspace without variants/fp32/variant.json:
    the record and the folder its artifact is relative to."""
    record = VariantRecord(
        mode=FP32_MODE,
        status="ok",
        runner="torch",
        description="the FP32 baseline checkpoint, eager PyTorch",
        baseline=BaselineRef(
            model=meta["model"], num_classes=int(meta["num_classes"]), input_size=int(meta["input_size"])
        ),
        artifact=ws.model_path.name,
        format="checkpoint",
        dtype="float32",
    )
    return record, ws.baseline_dir


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


# the test split per data config, built once per process: a fork-server child finds it built
_TEST_SPLITS: dict[str, Any] = {}
# the split accuracy is measured on: the test split seen as the data config's eval_crops
_ACCURACY_SPLITS: dict[str, Any] = {}
# a split at most this large is turned into tensors once, so no child runs its transforms again
MATERIALIZE_MAX_BYTES = 512 * 2**20


def _split_key(meta: dict[str, Any]) -> str:
    """The checkpoint's data config as a key of the per-process split caches."""
    return json.dumps(meta["data"], sort_keys=True, default=str)


def test_split(meta: dict[str, Any]):
    """The checkpoint's data splits, with ``test`` as ready tensors where it is small."""
    key = _split_key(meta)
    if key not in _TEST_SPLITS:
        from qbench.data.registry import load_data

        data = load_data(DataConfig.from_dict(meta["data"], "the checkpoint's data config"))
        # taken before the test split becomes plain tensors: ten crops need its transforms
        _ACCURACY_SPLITS[key] = data.eval_split("test") if data.eval_crops != "center" else None
        first = data.test[0][0] if len(data.test) else None
        if (
            first is not None
            and first.numel() * first.element_size() * len(data.test) <= MATERIALIZE_MAX_BYTES
        ):
            items = [data.test[i] for i in range(len(data.test))]
            images = torch.stack([x for x, _ in items])
            labels = torch.as_tensor([int(y) for _, y in items], dtype=torch.int64)
            data.test = torch.utils.data.TensorDataset(images, labels)
        _TEST_SPLITS[key] = data
    return _TEST_SPLITS[key]


def accuracy_split(meta: dict[str, Any]):
    """The test split as accuracy sees it: one view, or ten crops averaged (--eval-crops ten)."""
    data = test_split(meta)
    return _ACCURACY_SPLITS[_split_key(meta)] or data.test


def bench_settings(options: BenchOptions) -> BenchSettings:
    timer = (
        "GPU compute: CUDA events on the runner's stream; host latency: perf_counter from before the "
        "launch to after the synchronize (one per iteration)"
        if options.device != "cpu"
        else "perf_counter"
    )
    return BenchSettings(options=options, statistics=stats.conventions(), timer=timer)


def bench_variant(
    ws: Workspace,
    mode: str,
    options: BenchOptions,
    *,
    facts: ModelFacts | None = None,
    meta: dict[str, Any] | None = None,
    machine: EnvRecord | None = None,
    with_accuracy: bool | None = None,
    progress: ProgressFn | None = None,
) -> BenchResult:
    """Measure ``mode``; a variant that cannot run here comes back as skipped, never raised.

    ``facts`` and ``meta`` (from :func:`baseline_info`) are computed here when not given;
    ``machine`` (``qbench.env.capture()`` from the parent) saves re-probing the machine.
    """
    variant = VariantRecord.from_json(ws.variant_json(mode))
    result = BenchResult(
        mode=mode,
        status="ok",
        settings=bench_settings(options),
        runner=variant.runner,
        device=options.device,
        variant=variant,
        created=now(),
    )
    reason = skip_reason(variant, options)
    if reason:
        result.status, result.skip_reason = "skipped", reason
        result.notes.append(f"{mode}: skipped: {reason}")
        return result
    result.emulated = capabilities.emulated(variant.activations, options.device, runner=variant.runner)
    if variant.artifact is None:
        raise QBenchError(
            f"{ws.variant_json(mode)} names no artifact; rerun 'qbench quantize --mode {mode}'."
        )
    if facts is None or meta is None:
        facts, meta = baseline_info(ws)
    with_accuracy = options.accuracy if with_accuracy is None else with_accuracy
    _measure(ws, result, variant, meta, options, with_accuracy, progress)
    result.model = facts
    result.efficiency = efficiency.annotate(result.latency, facts.flops, variant.ops_unit)
    result.size_bytes = artifact_bytes(ws.variant_dir(mode) / variant.artifact)
    from qbench import env

    result.env = env.capture(machine)
    roofline.annotate(result)  # against this machine's limits (cached per machine fingerprint)
    return result


def _measure(
    ws,
    result: BenchResult,
    variant: VariantRecord,
    meta,
    options: BenchOptions,
    with_accuracy: bool,
    progress,
):
    from qbench.runners.base import create_runner

    data = test_split(meta)
    accuracy_set = accuracy_split(meta)
    images = torch.stack([data.test[i][0] for i in range(min(len(data.test), max(options.batch_sizes)))])
    threads = options.threads or torch.get_num_threads()
    torch.set_num_threads(threads)

    gc.collect()
    mem = MemoryStats(watcher_interval_ms=options.watcher_interval_ms)
    mem.rss_before_load_mb = memory.rss_bytes() / memory.MB
    runner = create_runner(
        variant,
        ws.variant_dir(result.mode),
        device=options.device,
        threads=threads,
        cuda_graph=options.cuda_graph,
        tf32=options.tf32,
    )
    load_start = time.perf_counter()
    runner.load()
    result.settings.load_seconds = time.perf_counter() - load_start
    mem.rss_after_load_mb = memory.rss_bytes() / memory.MB
    try:
        with runner.on_stream():  # CUDA: inputs, kernels and events all on the runner's stream
            _sweep(runner, result, options, images, mem, progress)
            result.runner_info = {**runner.describe(), "threads": threads}
            if options.profile and result.emulated and not options.profile_emulated:
                result.notes.append(
                    f"per-layer profile: not taken ({result.emulated}; qbench bench --profile takes it)"
                )
            elif options.profile:  # after the timed loop and the memory reading: neither sees the profiler
                from qbench.harness.profile import profile_sweep

                result.profiles, notes = profile_sweep(
                    runner, lambda bs: runner.prepare(tiled_batch(images, bs)), result.latency
                )
                result.notes.extend(notes)
            if with_accuracy:
                acc_start = time.perf_counter()
                logits, labels = acc.collect_logits(runner, accuracy_set, options.accuracy_batch_size)
                result.settings.accuracy_seconds = time.perf_counter() - acc_start
    finally:
        runner.close()
        gc.collect()
    if with_accuracy:
        acc.save_logits(ws, result.mode, logits)
        reference = (
            logits if result.mode == FP32_MODE else _fp32_logits(ws, options, meta, accuracy_set, len(labels))
        )
        if reference is None:
            result.notes.append("agreement with FP32: n/a (the fp32 variant cannot run here)")
        result.accuracy = acc.accuracy_stats(logits, labels, data.class_names, reference)
        result.accuracy.eval_crops = data.eval_crops


def _sweep(runner, result: BenchResult, options: BenchOptions, images, mem: MemoryStats, progress) -> None:
    """The batch-size sweep: each size warmed up and timed, its energy metered and (on a GPU) the
    device's memory, clocks and power read over it; the process's memory watched over the sweep."""
    cuda = options.device.startswith("cuda")
    meter = energy.Meter.for_device(options.device)
    monitor = gpu_telemetry.GpuMonitor.for_device(options.device)  # resets torch's peaks per batch size
    watch = memory.PeakWatcher(interval_s=options.watcher_interval_ms / 1e3, sample_when_hwm=False)
    try:
        with watch as watcher:
            for bs in options.batch_sizes:
                native = runner.prepare(
                    tiled_batch(images, bs)
                )  # outside the window: input copy, graph capture
                joules_from = meter.start()
                with monitor.batch() as window:
                    run = time_call(
                        lambda native=native: runner.infer(native),
                        runner.sync,
                        warmup=options.warmup,
                        warmup_s=options.warmup_s,
                        iters=options.iters,
                        min_seconds=options.min_seconds,
                        cuda=cuda,
                        max_iters=options.max_iters,
                        max_seconds=options.max_seconds_per_batch,
                        stream=runner.stream,
                    )
                meter.stop(joules_from, bs, calls=1 + run.warmup_iters + len(run.samples_ms))
                lat = stats.from_run(run, bs, options.cv_threshold)
                lat.gpu = window.telemetry
                lat.iters_requested, lat.warmup_requested = options.iters, options.warmup
                lat.time_budget_s, lat.warmup_s = options.max_seconds_per_batch, run.warmup_s
                if not options.keep_samples:
                    lat.samples_ms = []
                    if lat.host is not None:
                        lat.host.samples_ms = []
                result.latency.append(lat)
                del native
                if progress:
                    progress(result.mode, bs)
    finally:
        monitor.close()
    result.notes.extend(monitor.notes())
    result.energy = meter.stats()
    mem.rss_peak_mb = watcher.peak / memory.MB
    mem.runtime_mb = mem.rss_peak_mb - mem.rss_before_load_mb
    mem.watcher_interval_ms = watcher.achieved_interval_ms  # None: no sampling thread ran
    result.notes.append(
        "peak RSS: kernel VmHWM, reset before the sweep (no sampling thread competes with the timed loop)"
        if watcher.hwm_used
        else "peak RSS: sampling watcher thread"
    )
    gpu, notes = memory.gpu_memory(options.device, [lat.gpu for lat in result.latency if lat.gpu is not None])
    for key, value in gpu.items():
        setattr(mem, key, value)
    result.notes.extend(notes)
    result.memory = mem


def _fp32_logits(ws: Workspace, options: BenchOptions, meta: dict[str, Any], test_set, n: int):
    """fp32's saved logits; computed now (after this variant's measurement) when missing."""
    saved = acc.load_logits(ws, FP32_MODE, n)
    if saved is not None:
        return saved
    from qbench.runners.base import create_runner

    if ws.variant_json(FP32_MODE).is_file():
        variant, vdir = VariantRecord.from_json(ws.variant_json(FP32_MODE)), ws.variant_dir(FP32_MODE)
    else:
        variant, vdir = checkpoint_variant(ws, meta)
    if skip_reason(variant, options):
        return None
    runner = create_runner(variant, vdir, device=options.device, threads=options.threads)
    runner.load()
    try:
        logits, _ = acc.collect_logits(runner, test_set, options.accuracy_batch_size)
    finally:
        runner.close()
    acc.save_logits(ws, FP32_MODE, logits)
    return logits


# the last line of a failure is usually the one-sentence error: kept whole up to this length
MAX_REASON_CHARS = 2000


def failed_result(mode: str, options: BenchOptions, error: BaseException | str) -> BenchResult:
    """The record of a bench that failed. A QBenchError (bad input: a corrupt artifact, a shape
    the engine refuses) keeps its one sentence, which names the fix, and is marked
    ``input_error``; anything else keeps the end of its traceback."""
    if isinstance(error, QBenchError):
        reason = str(error)[:MAX_REASON_CHARS]
        notes = [f"{mode}: failed: {reason}"]
    else:
        tail = error if isinstance(error, str) else "".join(traceback.format_exception(error))
        tail = "\n".join(tail.strip().splitlines()[-15:])
        reason = (tail.splitlines()[-1] if tail else "unknown error")[:MAX_REASON_CHARS]
        notes = [f"{mode}: failed: {reason}", tail]
    return BenchResult(
        mode=mode,
        status="failed",
        skip_reason=reason,
        input_error=isinstance(error, QBenchError),
        settings=bench_settings(options),
        device=options.device,
        notes=notes,
        created=now(),
    )
