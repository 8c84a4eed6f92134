"""A typed row per variant: what every template, the CSV and the figures consume.

Built from one :class:`BenchResult` (and the variant record beside it) of a
:class:`~qbench.reports.sources.Source`. The headline statistic is the median: speedups,
batch-1 latency, best throughput and figures use it; the mean is kept for reference 000's
"Mean Time" column. A value that cannot apply is the string ``n/a (<reason>)`` in ``cells``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qbench.records import Agreement, BenchResult, ClassMetrics, LatencyStats, VariantRecord
from qbench.reports import fmt
from qbench.reports.memory import MemoryCells, memory_cells
from qbench.reports.model_facts import ModelCells, model_cells
from qbench.reports.provenance import ConversionFacts, conversion_facts
from qbench.reports.sources import BASELINE_MODE, Source

if TYPE_CHECKING:  # filled in by context.py; these modules import this one
    from qbench.reports.text_fields import Comparison, TextFields
    from qbench.reports.train_facts import TrainFacts

_TORCH_DTYPES = {"float32", "float16", "bfloat16", "qint8", "quint8", "int8", "float64"}


@dataclass
class LatencyRow:
    """One batch size of one variant: the recorded statistics plus the comparison with FP32."""

    stats: LatencyStats
    median_throughput_ips: float  # batch size / median latency: the headline throughput
    speedup: float | None  # FP32 median / this median at the same batch size
    speedup_text: str
    fp32_median_ms: float | None

    @property
    def batch_size(self) -> int:
        return self.stats.batch_size

    @property
    def noisy(self) -> bool:
        return self.stats.noisy

    @property
    def robust_cv(self) -> float:
        """IQR / (1.349 x median): the dispersion the noisy flag is decided on."""
        from qbench.harness.stats import robust_cv

        return robust_cv(self.stats.iqr_ms, self.stats.median_ms)

    @property
    def noisy_reason(self) -> str:
        return f"noisy: robust CV {self.robust_cv * 100:.1f}%" if self.stats.noisy else ""

    @property
    def budget_cut(self) -> bool:
        return self.stats.stopped_by == "time-budget"

    @property
    def iterations_text(self) -> str:
        """Timed iterations and why the loop stopped there: '100', '14 of 100 (2 s budget)'."""
        s = self.stats
        asked = f" of {s.iters_requested}" if s.iters_requested else ""
        if s.stopped_by == "time-budget":
            return f"{s.n_samples}{asked} ({s.time_budget_s or 0:g} s budget)"
        if s.stopped_by == "max-iters":
            return f"{s.n_samples} (sample cap)"
        if s.stopped_by == "min-seconds":
            return f"{s.n_samples} (min seconds)"
        return str(s.n_samples)

    @property
    def warmup_text(self) -> str:
        """Warm-up calls made: '10', or '3 of 10' when the time budget cut it short."""
        s = self.stats
        if s.warmup_requested and s.warmup_iters < s.warmup_requested:
            return f"{s.warmup_iters} of {s.warmup_requested}"
        return str(s.warmup_iters)

    @property
    def per_image_mean_ms(self) -> float:
        return self.stats.mean_ms / self.stats.batch_size

    @property
    def gpu(self) -> GpuCells | None:
        return gpu_cells(self.stats)

    @property
    def median_ci_text(self) -> str:
        """'1.80–2.40'; n/a below 6 samples, where no order-statistic interval reaches 95%."""
        low, high = self.stats.median_ci_low_ms, self.stats.median_ci_high_ms
        if not (math.isfinite(low) and math.isfinite(high)):
            return fmt.na("too few samples")
        return f"{low:.2f}–{high:.2f}"


@dataclass
class GpuCells:
    """One batch size of a GPU run as printed: GPU compute time (the CUDA events, the row's own
    statistics) beside the host latency of the same calls, and what the device did meanwhile."""

    compute_median: str
    host_median: str
    host_p99: str
    host_overhead: str  # host median - GPU compute median: launch, copies inside the call, the wait
    memory: str  # torch's peak / the device's own view (free-memory delta) / NVML per process
    clocks: str
    power: str
    temperature: str


def gpu_cells(stats: LatencyStats) -> GpuCells | None:
    """None for a CPU row (its samples are wall time already)."""
    host, gpu = stats.host, stats.gpu
    if host is None:
        return None
    unread = "not read"
    memory = clocks = power = temperature = fmt.na("no GPU telemetry recorded")
    if gpu is not None:
        memory = " / ".join(
            fmt.mb(v, unread) for v in (gpu.peak_allocated_mb, gpu.device_used_delta_mb, gpu.nvml_process_mb)
        )
        clocks = (
            f"SM {fmt.num(gpu.sm_clock_mhz, 0, unread)} / mem {fmt.num(gpu.mem_clock_mhz, 0, unread)} MHz"
        )
        limit = f" of {gpu.power_limit_w:.0f} W" if gpu.power_limit_w else ""
        power = f"{fmt.num(gpu.power_w, 1, unread, ' W')}{limit}"
        temperature = fmt.num(gpu.temperature_c, 0, unread, " °C")
    return GpuCells(
        compute_median=fmt.plain(stats.median_ms),
        host_median=fmt.plain(host.median_ms),
        host_p99=fmt.plain(host.p99_ms),
        host_overhead=fmt.plain(host.median_ms - stats.median_ms),
        memory=memory,
        clocks=clocks,
        power=power,
        temperature=temperature,
    )


@dataclass
class VariantCells:
    """The summary-table cells of a variant, as printed (n/a with the reason where empty)."""

    status: str
    size: str
    size_ratio: str
    top1: str
    top5: str
    top1_error: str
    top5_error: str
    acc_delta: str
    agreement: str
    mean_logit_diff: str
    max_logit_diff: str
    cosine: str
    batch1: str  # median latency at batch 1
    batch1_ci: str  # its 95% confidence interval
    best_throughput: str


@dataclass
class VariantRow:
    key: str  # unique across sources: "<source label>/<mode>"
    mode: str
    label: str
    source: str
    workspace: str
    machine: str
    status: str
    is_baseline: bool
    skip_reason: str | None
    unavailable: str  # "" when ok, else "<status>: <reason>"
    device: str
    engine: str
    backend: str
    precision: str
    dtype: str
    size_mb: float | None
    top1: float | None
    top5: float | None
    top1_error: float | None
    top5_error: float | None
    loss: float | None
    n_images: int | None
    agreement: Agreement | None
    acc_delta: float | None  # percentage points against FP32
    size_ratio: float | None
    latency: list[LatencyRow]
    batch1_ms: float | None  # median
    best_throughput_ips: float | None  # median-based
    best_throughput_batch: int | None
    memory: MemoryCells
    model: ModelCells
    conversion: ConversionFacts
    cells: VariantCells
    per_class: list[ClassMetrics] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    created: str = ""
    speedup_cells: list[str] = field(default_factory=list)  # one per report batch size
    experiment: str = ""
    train: TrainFacts | None = None  # the FP32 training run behind it (sections 3, 4, 6)
    text: TextFields | None = None  # reference 000's printed fields
    comparison: Comparison | None = None  # section 7 of a converted variant
    emulated: str | None = None  # "emulated: <reason>": no native arithmetic for its precision here

    @property
    def ok(self) -> bool:
        return not self.unavailable

    @property
    def noisy(self) -> bool:
        return any(row.noisy for row in self.latency)

    def latency_at(self, batch_size: int) -> LatencyRow | None:
        return next((row for row in self.latency if row.batch_size == batch_size), None)


def _with_unit(text: str, unit: str) -> str:
    return text if text.startswith("n/a") else text + unit


def _baseline_gap(base: BenchResult | None) -> str:
    """Why nothing can be compared with FP32 ('' when the FP32 result is usable)."""
    if base is None:
        return "no FP32 result"
    return "" if base.ok else f"FP32 {base.status}"


def _latency_rows(r: BenchResult, base: BenchResult | None) -> list[LatencyRow]:
    rows = []
    for s in sorted(r.latency, key=lambda s: s.batch_size):
        ref = base.latency_at(s.batch_size) if base is not None else None
        speedup = None
        if r.mode == BASELINE_MODE:
            speedup, text = 1.0, "1.00x"
        elif base is None or not base.ok:
            text = fmt.na(_baseline_gap(base))
        elif ref is None:
            text = fmt.na(f"FP32 not measured at batch {s.batch_size}")
        else:
            speedup = ref.median_ms / s.median_ms if s.median_ms > 0 else None
            text = fmt.ratio(speedup, reason="zero latency")
        rows.append(
            LatencyRow(
                stats=s,
                median_throughput_ips=s.median_throughput_ips,
                speedup=speedup,
                speedup_text=text,
                fp32_median_ms=ref.median_ms if ref is not None else None,
            )
        )
    return rows


def _dtype(variant: VariantRecord | None) -> str:
    if variant is None or not variant.dtype:
        return fmt.na("not recorded in variant.json")
    from qbench.harness.roofline import precision_token

    text = f"torch.{variant.dtype}" if variant.dtype in _TORCH_DTYPES else variant.dtype
    # a quantized variant takes and returns floats: say so, beside what it computes in
    weights = precision_token(variant.weights)
    if weights and weights not in (variant.dtype, _SHORT.get(variant.dtype)):
        text += f" (inputs and outputs; weights {weights})"
    return text


_SHORT = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def _backend(variant: VariantRecord | None, r: BenchResult) -> str:
    engine = (variant.engine if variant else None) or r.runner or "unknown engine"
    extra = [r.device]
    # the keys the ONNX Runtime runner's describe() and the harness (sweep.py) write
    providers = r.runner_info.get("providers")
    if isinstance(providers, list) and providers:
        extra.append(str(providers[0]))
    threads = r.runner_info.get("threads")
    if threads:
        extra.append(f"{threads} threads")
    return f"{engine} ({', '.join(extra)})"


def _notes(r: BenchResult, variant: VariantRecord | None, latency: list[LatencyRow]) -> list[str]:
    notes = list(r.notes)
    if variant is not None and variant.note:
        notes.append(variant.note)
    budget = [row for row in latency if row.budget_cut]
    if budget:
        notes.append(
            f"time budget of {budget[0].stats.time_budget_s:g} s per batch size: "
            + ", ".join(f"batch {row.batch_size}: {row.iterations_text}" for row in budget)
        )
    noisy = [row for row in latency if row.noisy]
    if noisy:
        notes.append(
            "noisy measurement (robust CV above the threshold) at batch size "
            + ", ".join(f"{row.batch_size} (robust CV {row.robust_cv * 100:.1f}%)" for row in noisy)
        )
    return notes


def variant_row(source: Source, r: BenchResult, multi: bool) -> VariantRow:
    base = source.baseline
    variant = source.variant(r)
    unavailable = "" if r.ok else f"{r.status}: {r.skip_reason or 'no reason recorded'}"
    is_base = r.mode == BASELINE_MODE
    acc = r.accuracy
    base_acc = base.accuracy if base is not None else None
    latency = _latency_rows(r, base) if r.ok else []
    b1 = next((row for row in latency if row.batch_size == 1), None)
    best = max(latency, key=lambda row: row.median_throughput_ips) if latency else None

    no_base = _baseline_gap(base)
    acc_reason = unavailable or "accuracy not measured"
    lat_reason = unavailable or "no latency measured"
    if is_base:
        acc_delta, size_ratio = 0.0, 1.0
        agree_reason = "FP32 reference"
    else:
        acc_delta = acc.top1 - base_acc.top1 if acc and base_acc else None
        size_ratio = r.size_mb / base.size_mb if r.size_mb and not no_base and base.size_mb else None
        agree_reason = unavailable or no_base or "agreement not measured"
    agreement = acc.agreement if acc else None
    cells = VariantCells(
        status="ok" if r.ok else unavailable,
        size=fmt.mb(r.size_mb, unavailable or "not recorded"),
        size_ratio=fmt.ratio(size_ratio, reason=unavailable or no_base or "size not recorded"),
        top1=fmt.pct(acc.top1 if acc else None, 2, acc_reason),
        top5=fmt.pct(acc.top5 if acc else None, 2, acc_reason),
        top1_error=fmt.pct(acc.top1_error if acc else None, 2, acc_reason),
        top5_error=fmt.pct(acc.top5_error if acc else None, 2, acc_reason),
        acc_delta=fmt.signed(acc_delta, 2, unavailable or no_base or "accuracy not measured", " pp"),
        agreement=fmt.pct(agreement.top1_agreement if agreement else None, 2, agree_reason),
        mean_logit_diff=fmt.plain(agreement.mean_abs_logit_diff if agreement else None, 4, agree_reason),
        max_logit_diff=fmt.plain(agreement.max_abs_logit_diff if agreement else None, 4, agree_reason),
        cosine=fmt.plain(agreement.cosine if agreement else None, 5, agree_reason),
        batch1=fmt.plain(
            b1.stats.median_ms if b1 else None,
            2,
            lat_reason if not latency else "batch 1 not measured",
            " ms",
        ),
        batch1_ci=_with_unit(b1.median_ci_text, " ms") if b1 else fmt.na(lat_reason),
        best_throughput=(
            f"{best.median_throughput_ips:,.1f} img/s @{best.batch_size}" if best else fmt.na(lat_reason)
        ),
    )
    precision = variant.precision_text() if variant else None
    return VariantRow(
        key=f"{source.label}/{r.mode}",
        mode=r.mode,
        label=f"{r.mode} @ {source.label}" if multi else r.mode,
        source=source.label,
        workspace=str(source.root),
        machine=source.machine,
        status=r.status,
        is_baseline=is_base,
        skip_reason=r.skip_reason,
        unavailable=unavailable,
        device=r.device,
        engine=(variant.engine if variant else None) or r.runner or fmt.na("not recorded"),
        backend=_backend(variant, r),
        precision=precision or fmt.na("not recorded in variant.json"),
        dtype=_dtype(variant),
        size_mb=r.size_mb,
        top1=acc.top1 if acc else None,
        top5=acc.top5 if acc else None,
        top1_error=acc.top1_error if acc else None,
        top5_error=acc.top5_error if acc else None,
        loss=acc.loss if acc else None,
        n_images=acc.n_images if acc else None,
        agreement=agreement,
        acc_delta=acc_delta,
        size_ratio=size_ratio,
        latency=latency,
        batch1_ms=b1.stats.median_ms if b1 else None,
        best_throughput_ips=best.median_throughput_ips if best else None,
        best_throughput_batch=best.batch_size if best else None,
        memory=memory_cells(r, unavailable),
        model=model_cells(r, source.train),
        conversion=conversion_facts(variant, r, unavailable),
        cells=cells,
        per_class=list(acc.per_class) if acc else [],
        confusion=acc.confusion if acc else [],
        class_names=[c.label for c in acc.per_class] if acc else [],
        notes=_notes(r, variant, latency),
        created=r.created,
        emulated=r.emulated,
    )
