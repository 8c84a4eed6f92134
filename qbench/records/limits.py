"""Machine limits, roofline and energy records.

``MachineLimits`` is what ``qbench info --limits`` measures and caches per machine fingerprint
(``<cache>/limits/<fingerprint>.json``): streaming memory bandwidth and matrix-multiply peaks per
precision, each with the method that produced it. A bench result carries a ``Roofline`` (the
limits it was compared with are copied in, so a report renders without the cache) and an
``EnergyStats`` (RAPL or NVML joules per image, or the reason there are none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from qbench.records.base import Record

Bound = Literal["memory", "compute"]


@dataclass
class BandwidthMeasurement(Record):
    """Streaming bandwidth: bytes moved per pass over a buffer larger than the last-level cache."""

    gbytes_per_s: float  # median of the passes, 1e9 bytes per second
    passes_gbytes_per_s: list[float]
    method: str  # what was run, e.g. "torch.sum over a float32 buffer (read once per pass)"
    library: str  # "torch 2.9.1"
    buffer_bytes: int
    bytes_per_pass: int  # bytes read (and written, for a copy) per pass
    threads: int
    cache_bytes: int | None = None  # the last-level cache the buffer was sized against
    note: str | None = None


@dataclass
class PeakMeasurement(Record):
    """One matrix-multiply peak: the best median rate over the shapes tried."""

    precision: str  # fp32 | bf16 | fp16 | int8
    library: str  # "torch 2.9.1 (oneDNN/MKL)", "onnxruntime 1.23.2 (CPUExecutionProvider)"
    op: str  # "torch.matmul", "torch.ops.quantized.linear (x86 engine)", "ONNX MatMul"
    rate: float | None  # in ``unit``; None when the op could not run (``error`` says why)
    unit: str  # "GFLOP/s" or "GOP/s" (2 operations per multiply-accumulate)
    shape: list[int] = field(default_factory=list)  # [M, K, N] of the best rate
    median_ms: float | None = None
    repetitions: int = 0  # timed calls at the best shape (after warm-up)
    threads: int = 0
    trials: dict[str, float] = field(default_factory=dict)  # "MxKxN" -> rate, every shape tried
    emulated: str | None = None  # no native arithmetic for this precision on this machine
    error: str | None = None


@dataclass
class DeviceLimits(Record):
    device: str  # "cpu" or "cuda:<index>"
    name: str  # the CPU model or GPU name
    bandwidth: BandwidthMeasurement | None = None
    peaks: list[PeakMeasurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def peak(self, precision: str) -> PeakMeasurement | None:
        """The highest measured peak of ``precision`` over the libraries tried."""
        found = [p for p in self.peaks if p.precision == precision and p.rate]
        return max(found, key=lambda p: p.rate or 0.0, default=None)

    @property
    def precisions(self) -> list[str]:
        return list(dict.fromkeys(p.precision for p in self.peaks if p.rate))


@dataclass
class MachineLimits(Record):
    KIND = "machine limits"
    REWRITE = "rerun 'qbench info --limits --remeasure'"

    fingerprint: str  # EnvRecord.fingerprint() of the measuring process
    machine: str  # EnvRecord.machine_label()
    measured: str  # ISO timestamp
    seconds: float  # wall time of the whole measurement
    quick: bool  # a reduced measurement (tests): small buffer and shapes, few repetitions
    cpu: DeviceLimits
    gpus: list[DeviceLimits] = field(default_factory=list)
    # CPU cores other processes (and the hypervisor's steal) took during the measurement: limits
    # measured on a busy machine are low, so they are not cached
    other_load_cores: float | None = None

    def for_device(self, device: str) -> DeviceLimits | None:
        """The limits of ``device`` ('cpu', 'cuda', 'cuda:1'); None when not measured."""
        if not device.startswith("cuda"):
            return self.cpu
        wanted = device if ":" in device else "cuda:0"
        return next((g for g in self.gpus if g.device == wanted), None)


@dataclass
class RooflinePoint(Record):
    """One batch size against the roofline of this machine; rates in the roofline's unit."""

    batch_size: int
    bytes_per_call: int  # weights once + activations read and written, for the whole batch
    ops_per_call: int  # 2 x MACs x batch size
    intensity: float  # operations per byte
    bound_rate: float  # min(peak, intensity x bandwidth)
    bound: Bound  # which roof applies at this intensity
    achieved_rate: float  # ops_per_call / median latency
    fraction: float  # achieved_rate / bound_rate
    bound_ms: float  # the fastest this call could run: max(bytes / bandwidth, ops / peak)
    over_floor: float  # median latency / weight-streaming floor


@dataclass
class Roofline(Record):
    """Where each batch size sits against this machine's memory and compute roofs."""

    device: str
    precision: str  # the arithmetic whose peak is the compute roof: fp32 | bf16 | fp16 | int8
    unit: str  # the rate unit of peak and points: GOP/s for int8, GFLOP/s otherwise
    peak_rate: float | None  # None: no peak measured for ``precision`` (memory roof only)
    peak_method: str
    bandwidth_gbytes_per_s: float
    bandwidth_method: str
    weight_bytes: int
    weight_bytes_method: str  # "57,003,338 parameters x 1 byte (int8)" or the artifact on disk
    activation_bytes_per_image: int
    activation_method: str
    floor_ms: float  # weight-streaming floor: weight_bytes / bandwidth
    knee_batch_size: int | None  # smallest batch size reaching 90% of the best throughput
    points: list[RooflinePoint] = field(default_factory=list)
    limits: DeviceLimits | None = None  # the limits compared with, as measured
    limits_fingerprint: str = ""
    limits_measured: str = ""
    convention: str = ""
    notes: list[str] = field(default_factory=list)

    def at(self, batch_size: int) -> RooflinePoint | None:
        return next((p for p in self.points if p.batch_size == batch_size), None)


@dataclass
class EnergyPoint(Record):
    """Energy over one batch size's calls (cold call, warm-up and timed loop)."""

    batch_size: int
    joules: float
    seconds: float
    images: int  # images processed in the window
    joules_per_image: float
    watts: float


@dataclass
class EnergyStats(Record):
    """Joules per image per batch size, or why this machine cannot say (``reason``)."""

    source: str | None  # "RAPL package-0 (/sys/class/powercap/intel-rapl:0)" or "NVML ..."; None: n/a
    reason: str | None = None  # "n/a (no RAPL counters on this machine)"
    window: str = ""  # what the reading spans
    scope: str = ""  # what the counter covers (the whole CPU package, other processes included)
    points: list[EnergyPoint] = field(default_factory=list)

    def at(self, batch_size: int) -> EnergyPoint | None:
        return next((p for p in self.points if p.batch_size == batch_size), None)
