"""BenchResult: the one record per variant that reports and regression read.

Written to ``results/<mode>.json`` by ``qbench bench``; ``to_dict``/``from_dict`` round-trip
exactly. Every number in it was measured by the harness; a field that cannot apply on this
machine (GPU memory on a CPU run) is ``None`` and its reason is in ``notes``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from qbench.workspace import SCHEMA_VERSION, read_json, write_json


@dataclass
class LatencyStats:
    """Timing of one batch size: milliseconds per batch unless the name says otherwise."""

    batch_size: int
    n_samples: int
    warmup_iters: int
    cold_ms: float  # the very first call, before warm-up (not in the statistics)
    mean_ms: float
    median_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    iqr_ms: float
    cv: float  # std / mean
    per_image_ms: float  # median_ms / batch_size
    throughput_ips: float  # images/s = batch x iterations / timed wall time
    total_s: float  # wall time of the timed loop
    noisy: bool = False  # cv above the threshold
    unreliable_percentiles: list[str] = field(default_factory=list)  # e.g. ["p99"] with n < 1000
    gflops: float | None = None  # achieved GFLOP/s (GOP/s for INT8) from the model's FLOPs
    sync: str = "none"  # "none" (CPU: the call returns) | "cuda-event" | "cuda-synchronize"
    samples_ms: list[float] = field(default_factory=list)
    repeats: list[float] = field(default_factory=list)  # median of each --repeats run, if any


@dataclass
class MemoryStats:
    rss_before_load_mb: float | None = None
    rss_after_load_mb: float | None = None
    rss_peak_mb: float | None = None  # peak RSS during inference (kernel VmHWM, or a sampling watcher)
    runtime_mb: float | None = None  # rss_peak - rss_before_load: the 'CPU Runtime Memory'
    gpu_peak_allocated_mb: float | None = None
    gpu_peak_reserved_mb: float | None = None
    gpu_nvml_mb: float | None = None
    watcher_interval_ms: float | None = None


@dataclass
class ClassMetrics:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Agreement:
    """Agreement of this variant's outputs with the FP32 baseline on the same test images."""

    top1_agreement: float  # % of images with the same predicted class
    mean_abs_logit_diff: float
    max_abs_logit_diff: float
    cosine: float  # mean cosine similarity of logit vectors


@dataclass
class AccuracyStats:
    n_images: int
    top1: float  # %
    top5: float  # % (equals 100 when there are 5 classes or fewer)
    loss: float  # cross-entropy
    per_class: list[ClassMetrics] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    agreement: Agreement | None = None


@dataclass
class BenchResult:
    mode: str
    status: str  # "ok" | "skipped" | "failed"
    skip_reason: str | None = None
    runner: str | None = None
    device: str = "cpu"
    model: dict[str, Any] = field(default_factory=dict)  # name, num_classes, input_size, params, flops
    variant: dict[str, Any] = field(default_factory=dict)  # the variant.json provenance
    runner_info: dict[str, Any] = field(default_factory=dict)  # threads, provider, dtype...
    size_bytes: int | None = None
    latency: list[LatencyStats] = field(default_factory=list)
    memory: MemoryStats = field(default_factory=MemoryStats)
    accuracy: AccuracyStats | None = None
    # achieved GFLOP/s convention, unit (GOP/s for INT8), batch-size knee (qbench.harness.efficiency)
    efficiency: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # warmup, iters, min_seconds, batch sizes...
    env: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    created: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def size_mb(self) -> float | None:
        return None if self.size_bytes is None else self.size_bytes / 2**20

    def latency_at(self, batch_size: int) -> LatencyStats | None:
        return next((s for s in self.latency if s.batch_size == batch_size), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["size_mb"] = self.size_mb
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchResult:
        data = dict(data)
        data.pop("size_mb", None)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["latency"] = [_build(LatencyStats, s) for s in data.get("latency", [])]
        data["memory"] = _build(MemoryStats, data.get("memory") or {})
        acc = data.get("accuracy")
        if acc is not None:
            acc = dict(acc)
            acc["per_class"] = [_build(ClassMetrics, c) for c in acc.get("per_class", [])]
            if acc.get("agreement") is not None:
                acc["agreement"] = _build(Agreement, acc["agreement"])
            data["accuracy"] = _build(AccuracyStats, acc)
        return cls(**data)

    def save_json(self, path: Path) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def from_json(cls, path: Path) -> BenchResult:
        return cls.from_dict(read_json(path, "result"))


def _build(cls, data: dict[str, Any]):
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})
