"""What `qbench bench` writes: results/<mode>.json (BenchResult), the record reports read.

Every number in it was measured by the harness; a field that cannot apply on this machine
(GPU memory on a CPU run) is None and the reason is in ``notes``. The headline statistic is
the median (the median of per-repeat medians with repeats); ``mean_ms`` is kept for the
reference report's "Mean Time" column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from qbench.records.base import Record
from qbench.records.config import BenchOptions
from qbench.records.env import EnvRecord
from qbench.records.limits import EnergyStats, Roofline
from qbench.records.metrics import ClassMetrics
from qbench.records.profile import LayerProfile
from qbench.records.variant import Status, VariantRecord

Sync = Literal["none", "cuda-event", "cuda-synchronize"]
# why the timed loop stopped: the count rule (--iters), --min-seconds kept it going, the sample
# cap (max_iters), or the per-batch time budget (max_seconds_per_batch) cut it short
StopRule = Literal["iterations", "min-seconds", "max-iters", "time-budget"]


@dataclass
class HostLatency(Record):
    """Wall-clock time of each timed call on a GPU, from before the launch to after the
    synchronize (trtexec's "Latency" beside its "GPU Compute Time"): launch overhead, any copies
    inside the call and the wait. The GPU compute time is LatencyStats' own samples."""

    median_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    p95_ms: float
    p99_ms: float
    samples_ms: list[float] = field(default_factory=list)


@dataclass
class GpuTelemetry(Record):
    """What the GPU did during one batch size's warm-up and timed loop (None: could not be read;
    the result's notes say why). Memory from torch's allocator (reset per batch size) and from the
    device's own view (free memory via cudaMemGetInfo, NVML's per-process figure found by the
    device's UUID), which also sees TensorRT's and ONNX Runtime's allocations."""

    peak_allocated_mb: float | None = None  # torch's caching allocator, peak since the reset
    peak_reserved_mb: float | None = None
    device_used_delta_mb: float | None = None  # peak (total - free) minus its value before the batch size
    nvml_process_mb: float | None = None  # NVML usedGpuMemory of this process, peak of the samples
    sm_clock_mhz: float | None = None  # median of the samples
    mem_clock_mhz: float | None = None
    power_w: float | None = None  # mean of the samples
    power_limit_w: float | None = None  # the enforced limit
    temperature_c: float | None = None  # the highest sample
    samples: int = 0  # NVML readings taken


@dataclass
class LatencyStats(Record):
    """Timing of one batch size: milliseconds per batch unless the name says otherwise."""

    batch_size: int
    n_samples: int
    warmup_iters: int
    cold_ms: float  # the very first call, before warm-up (not in the statistics); NaN if not taken
    mean_ms: float
    median_ms: float  # the headline: with repeats, the median of the per-repeat medians
    median_ci_low_ms: float  # 95% confidence interval of the median (order statistics)
    median_ci_high_ms: float
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
    total_s: float  # wall time of the timed loop(s)
    noisy: bool = False  # robust CV (IQR / (1.349 x median)) above the threshold
    unreliable_percentiles: list[str] = field(default_factory=list)  # e.g. ["p99"] with n < 1000
    gflops: float | None = None  # achieved rate in the variant's ops_unit
    sync: Sync = "none"
    samples_ms: list[float] = field(default_factory=list)
    repeats: list[float] = field(default_factory=list)  # median of each --repeats run, if any
    # how many iterations were asked for and why the loop stopped where it did (n_samples, warmup_iters)
    iters_requested: int | None = None
    warmup_requested: int | None = None
    time_budget_s: float | None = None  # max_seconds_per_batch in force, if any
    warmup_s: float | None = None  # wall time of the cold call and the warm-up calls
    stopped_by: StopRule = "iterations"
    # on a GPU: the samples above are GPU compute time (CUDA events on the stream the runner
    # enqueues on); host holds the wall-clock latency of the same calls, gpu what the device did
    host: HostLatency | None = None
    gpu: GpuTelemetry | None = None

    @property
    def median_throughput_ips(self) -> float:
        """Images/s at the median latency (batch / median): the headline throughput of the CLI
        and the reports. ``throughput_ips`` is trtexec's, over the loop's wall time: a few
        calls a busy machine held up lower it, not this."""
        return self.batch_size * 1000.0 / self.median_ms if self.median_ms > 0 else 0.0


@dataclass
class MemoryStats(Record):
    rss_before_load_mb: float | None = None
    rss_after_load_mb: float | None = None
    rss_peak_mb: float | None = None  # peak RSS during inference (kernel VmHWM, or a sampling watcher)
    runtime_mb: float | None = None  # rss_peak - rss_before_load: the 'CPU Runtime Memory'
    gpu_peak_allocated_mb: float | None = None
    gpu_peak_reserved_mb: float | None = None
    gpu_nvml_mb: float | None = None
    watcher_interval_ms: float | None = None


@dataclass
class Agreement(Record):
    """Agreement of this variant's outputs with the FP32 baseline on the same test images."""

    top1_agreement: float  # % of images with the same predicted class
    mean_abs_logit_diff: float
    max_abs_logit_diff: float
    cosine: float  # mean cosine similarity of logit vectors


@dataclass
class AccuracyStats(Record):
    n_images: int
    top1: float  # %
    top5: float  # % (equals 100 when there are 5 classes or fewer)
    loss: float  # cross-entropy
    per_class: list[ClassMetrics] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    agreement: Agreement | None = None
    # test-time views: "center", or "ten" (TenCrop + flips, softmax averaged: reference 001)
    eval_crops: str = "center"
    DERIVED = ("top1_error", "top5_error")

    @property
    def top1_error(self) -> float:
        return 100.0 - self.top1

    @property
    def top5_error(self) -> float:
        return 100.0 - self.top5


@dataclass
class ModelFacts(Record):
    """The FP32 model behind a variant (reference 000's section 2); flops count MACs."""

    name: str
    num_classes: int
    input_size: int
    total_params: int
    trainable_params: int
    flops: int
    fp32_size_bytes: int
    # per image: elements each conv/linear/pooling layer reads plus writes (the roofline's activations)
    activation_elements: int | None = None


@dataclass
class Efficiency(Record):
    unit: str  # the variant's ops_unit
    macs_per_image: int | None
    ops_per_image: int | None
    convention: str
    knee_fraction: float
    knee_batch_size: int | None
    best_throughput_ips: float | None


@dataclass
class BenchSettings(Record):
    options: BenchOptions
    statistics: dict[str, str] = field(default_factory=dict)  # the conventions of the statistics
    timer: str = ""
    load_seconds: float | None = None
    accuracy_seconds: float | None = None  # the accuracy pass over the test split, if one ran
    repeats_done: int = 1  # --repeats runs that finished ok and were merged into the statistics
    # "fresh process" (a new interpreter or a fork-server child), or "none (--no-isolate): ..."
    # when memory numbers include earlier variants
    isolation: str = ""


@dataclass
class BenchResult(Record):
    KIND = "result"
    REWRITE = "rerun 'qbench bench' for that mode"
    DERIVED = ("size_mb",)

    mode: str
    status: Status
    settings: BenchSettings
    skip_reason: str | None = None
    # failed on bad input (a QBenchError: corrupt artifact, refused shape), not a crash: exit 2
    input_error: bool = False
    runner: str | None = None
    device: str = "cpu"
    model: ModelFacts | None = None
    variant: VariantRecord | None = None
    runner_info: dict[str, Any] = field(default_factory=dict)  # threads, provider, dtype...
    size_bytes: int | None = None
    # "emulated: <reason>" when this machine has no native arithmetic for the variant's precision
    # (fp16 without avx512_fp16/amx_fp16...): measured all the same, but not what the precision costs natively
    emulated: str | None = None
    latency: list[LatencyStats] = field(default_factory=list)
    memory: MemoryStats = field(default_factory=MemoryStats)
    accuracy: AccuracyStats | None = None
    efficiency: Efficiency | None = None
    roofline: Roofline | None = None  # against this machine's measured limits
    energy: EnergyStats | None = None  # RAPL/NVML joules per image, or why there are none
    env: EnvRecord | None = None
    # per-layer profiles (bench --profile) at the smallest and largest batch size, from the first repeat
    profiles: list[LayerProfile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    created: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def size_mb(self) -> float | None:
        return None if self.size_bytes is None else self.size_bytes / 2**20

    def latency_at(self, batch_size: int) -> LatencyStats | None:
        return next((s for s in self.latency if s.batch_size == batch_size), None)
