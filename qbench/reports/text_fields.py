"""The printed fields of reference 000's sections for one variant, and section 7 of a converted one.

Section 7 of a converted variant compares it with the FP32 baseline of the same workspace
using medians (the headline statistic), and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from qbench.records import BenchResult, EnvRecord
from qbench.reports import fmt
from qbench.reports.rows import VariantRow
from qbench.reports.sources import Source


@dataclass
class TextFields:
    title: str
    experiment: str
    timestamp: str
    torch_version: str
    cuda_version: str
    device: str
    architecture: str
    total_params: str
    trainable_params: str
    model_size: str
    flops: str
    input_resolution: str
    num_classes: str
    test_accuracy: str
    top5_accuracy: str
    errors: str  # "top-1 a% / top-5 b%"
    warmup: str
    iterations: str
    batch_sizes: str
    backend: str
    synchronization: str
    reproducibility_seed: str
    latency_unavailable: str
    accuracy_2: str
    latency_b1: str


@dataclass
class Comparison:
    size: str
    speedups: list[str]
    accuracy: str
    top5: str
    agreement: str
    logits: str


def cuda_version(env: EnvRecord | None, device: str) -> str:
    """The CUDA runtime torch was built with, for a run on a CUDA device."""
    if not device.startswith("cuda"):
        return fmt.na("no CUDA device")
    if env is None:
        return fmt.na("no environment recorded")
    return env.cuda_version or fmt.na("CPU-only torch build")


def _views(r: BenchResult) -> str:
    """' (TenCrop + flips, 10 views averaged)' when accuracy was not measured on one centre view."""
    if r.accuracy is None or r.accuracy.eval_crops == "center":
        return ""
    return " (TenCrop + flips, 10 views averaged)"


def _sync_text(row: VariantRow) -> str:
    syncs = sorted({lat.stats.sync for lat in row.latency})
    if set(syncs) & {"cuda-event", "cuda-synchronize"}:
        return "CUDA synchronization enabled (" + ", ".join(syncs) + ")"
    return "not needed on the CPU: each call returns when the work is done"


def text_fields(source: Source, r: BenchResult, row: VariantRow, experiment: str, seed: str) -> TextFields:
    env = r.env or source.env
    model = row.model
    unavailable = row.unavailable
    lat_reason = unavailable or "no latency measured"
    acc_reason = unavailable or "accuracy not measured"
    options = r.settings.options
    size = model.fp32_size_mb if row.is_baseline else row.size_mb
    name = model.name or fmt.na("not recorded")
    kind = "FP32 BASELINE" if row.is_baseline else f"{row.mode.upper()} VARIANT"
    torch_version = env.libraries.get("torch") if env else None
    batches = [lat.batch_size for lat in row.latency] or options.batch_sizes
    return TextFields(
        title=f"{name.upper()} {kind} - COMPREHENSIVE ANALYSIS REPORT",
        experiment=experiment if row.is_baseline else f"{experiment} [{row.mode}]",
        timestamp=r.created or fmt.na("not recorded"),
        torch_version=torch_version or fmt.na("not recorded"),
        cuda_version=cuda_version(env, row.device),
        device=row.device,
        architecture=name,
        total_params=fmt.thousands(model.params),
        trainable_params=fmt.thousands(model.trainable_params),
        model_size=fmt.mb(size, unavailable or "not recorded"),
        flops=fmt.mega(model.flops),
        input_resolution=f"({model.input_size}, {model.input_size})"
        if model.input_size
        else fmt.na("not recorded"),
        num_classes=str(model.num_classes) if model.num_classes else fmt.na("not recorded"),
        test_accuracy=fmt.plain(row.top1, 4, acc_reason, "%") + _views(r),
        top5_accuracy=fmt.plain(row.top5, 4, acc_reason, "%"),
        errors=f"top-1 {row.cells.top1_error}, top-5 {row.cells.top5_error}",
        warmup=f"{options.warmup} runs before benchmarking" if row.latency else fmt.na(lat_reason),
        iterations=f"{options.iters} iterations per batch size" if row.latency else fmt.na(lat_reason),
        batch_sizes="[" + ", ".join(str(b) for b in batches) + "]",
        backend=row.backend if not unavailable else fmt.na(unavailable),
        synchronization=_sync_text(row) if row.latency else fmt.na(lat_reason),
        reproducibility_seed=f"Fixed random seed ({seed})" if seed.isdigit() else seed,
        latency_unavailable="" if row.latency else fmt.na(lat_reason),
        accuracy_2=row.cells.top1,
        latency_b1=row.cells.batch1 + (" (median)" if row.batch1_ms is not None else ""),
    )


def comparison(row: VariantRow, base: VariantRow | None) -> Comparison:
    """Section 7 of a converted variant: what it buys and costs against the FP32 baseline."""
    if base is None:
        reason = row.unavailable or "no FP32 result in this workspace"
    else:
        reason = row.unavailable or ("" if base.ok else f"FP32 {base.unavailable}")
    if reason or base is None:
        na = fmt.na(reason)
        return Comparison(na, [na], na, na, na, na)
    speedups = []
    for lat in row.latency:
        line = f"Batch {lat.batch_size}: {lat.speedup_text}"
        if lat.fp32_median_ms is not None:
            line += f" ({lat.stats.median_ms:.2f} ms vs {lat.fp32_median_ms:.2f} ms)"
        speedups.append(line)
    accuracy = row.cells.acc_delta
    if row.top1 is not None and base.top1 is not None:
        accuracy += f" ({row.top1:.2f}% vs {base.top1:.2f}%)"
    top5 = fmt.na("accuracy not measured")
    if row.top5 is not None and base.top5 is not None:
        top5 = f"{row.top5 - base.top5:+.2f} pp ({row.top5:.2f}% vs {base.top5:.2f}%)"
    agr = row.agreement
    logits = (
        f"mean |diff| {agr.mean_abs_logit_diff:.4f}, max |diff| {agr.max_abs_logit_diff:.4f}, "
        f"cosine {agr.cosine:.5f}"
        if agr
        else fmt.na("agreement not measured")
    )
    return Comparison(
        size=f"{row.cells.size_ratio} ({fmt.mb(row.size_mb)} vs {fmt.mb(base.size_mb)} on disk)",
        speedups=speedups or [fmt.na("no latency measured")],
        accuracy=accuracy,
        top5=top5,
        agreement=row.cells.agreement,
        logits=logits,
    )
