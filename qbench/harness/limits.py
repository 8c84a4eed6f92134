"""Measure this machine's limits: streaming memory bandwidth and matrix-multiply peaks.

The peaks are measured with the libraries the variants run on, so a variant's roofline is the
best its own stack showed on this machine: torch.matmul (oneDNN/MKL) for FP32, BF16 and FP16,
``torch.ops.quantized.linear`` with the x86 quantized engine (the eager INT8 variants' kernels),
and ONNX Runtime's MatMul (FP32) and MatMulInteger (INT8) on a model built in memory. Each
number keeps its method: library, op, the shape of the best rate, threads and repetitions.

Bandwidth is read bandwidth: ``torch.sum`` over a float32 buffer at least twice the last-level
cache (read from ``lscpu`` at run time), median of several passes, with torch's threads. On a
CUDA device: a device-to-device copy of a buffer well above the L2 cache (bytes read plus
written) and ``torch.matmul`` / ``torch._int_mm`` tensor-core peaks, timed with CUDA events.

Results are cached per machine fingerprint (``EnvRecord.fingerprint``: CPU, GPUs, threads,
library versions) in ``$QBENCH_CACHE_DIR/limits/`` (default ``~/.cache/qbench``), so a bench
compares with them without measuring again; ``qbench info --limits --remeasure`` refreshes them.
A full measurement takes roughly 10-20 s on 2 cores; ``quick`` (tests) a second or two.
``$QBENCH_LIMITS`` (full, quick, off) says how a bench measures limits missing from the cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qbench import capabilities
from qbench.errors import QBenchError
from qbench.harness.timing import time_call
from qbench.records import (
    BandwidthMeasurement,
    DeviceLimits,
    EnvRecord,
    MachineLimits,
    PeakMeasurement,
)
from qbench.workspace import cache_dir

# how a bench obtains limits missing from the cache: measure them in full (the default), quickly
# (test suites, CI smoke runs: the record says "quick"), or not at all (no roofline)
BENCH_ENV = "QBENCH_LIMITS"
BENCH_MODES = ("full", "quick", "off")
OPS_PER_MAC = 2
GB = 1e9
MIB = 2**20


@dataclass(frozen=True)
class Plan:
    """How hard to measure: buffer sizes, shapes and time per shape."""

    min_buffer_bytes: int  # the bandwidth buffer's floor (it is at least twice the LLC otherwise)
    max_buffer_bytes: int
    passes: int  # timed bandwidth passes (after one warm-up pass)
    first_size: int  # square matmul sizes start here and double...
    max_size: int  # ...up to here,
    max_call_s: float  # ...while the next size's predicted call time stays under this
    shape_budget_s: float  # timed calls per shape fill about this much time
    min_reps: int
    max_reps: int
    gpu_first_size: int = 1024
    gpu_max_size: int = 16384

    @property
    def quick(self) -> bool:
        return self is QUICK


FULL = Plan(256 * MIB, 4 * 2**30, 7, 512, 4096, 0.6, 0.3, 3, 50)
QUICK = Plan(16 * MIB, 32 * MIB, 3, 128, 256, 0.05, 0.02, 2, 5, 256, 512)


# ---------------------------------------------------------------------------------------------
# cache


def cache_path(fingerprint: str) -> Path:
    return cache_dir() / "limits" / f"{fingerprint}.json"


def load_cached(fingerprint: str) -> MachineLimits | None:
    """The cached limits of this fingerprint; None when absent or unreadable (measure again)."""
    path = cache_path(fingerprint)
    if not path.is_file():
        return None
    try:
        limits = MachineLimits.from_json(path)
        age_s = time.time() - path.stat().st_mtime
    except (QBenchError, OSError):  # corrupt or of another schema: measure again
        return None
    if busy(limits) and age_s > BUSY_KEEP_S:
        return None
    return limits if limits.fingerprint == fingerprint else None


def bench_mode() -> str:
    """$QBENCH_LIMITS: full (default), quick or off."""
    value = os.environ.get(BENCH_ENV, "").strip().lower() or "full"
    if value not in BENCH_MODES:
        raise QBenchError(
            f"{BENCH_ENV}={value!r} is not one of {', '.join(BENCH_MODES)}; set one of them or unset it."
        )
    return value


def obtain(
    machine: EnvRecord | None = None, *, remeasure: bool = False, quick: bool = False
) -> tuple[MachineLimits, bool]:
    """This machine's limits from the cache, measured (and cached) when missing or ``remeasure``;
    the second value says whether they were measured now. ``machine``: an env capture of the
    process whose threads the limits should use (default: this process)."""
    from qbench import env

    machine = env.capture(machine)
    fingerprint = machine.fingerprint()
    if not remeasure:
        cached = load_cached(fingerprint)
        if cached is not None:
            return cached, False
    limits = measure(machine, quick=quick)
    limits.save_json(cache_path(fingerprint))
    return limits, True


# other processes taking this many cores during a measurement make it a busy one, whose limits
# are low: kept only this long (the variants of one bench share it), then measured again
BUSY_CORES = 0.5
BUSY_KEEP_S = 600.0


def busy(limits: MachineLimits) -> bool:
    return limits.other_load_cores is not None and limits.other_load_cores >= BUSY_CORES


class OtherLoad:
    """CPU time the rest of the machine used (other processes, and time the hypervisor stole)
    while this process measured, in cores: the system's busy time less this process's."""

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self._start = (time.perf_counter(), self._busy_s(), self._own_s())

    @staticmethod
    def _busy_s() -> float:
        import psutil

        t = psutil.cpu_times()
        return (
            sum(t)
            - t.idle
            - getattr(t, "iowait", 0.0)
            - getattr(t, "guest", 0.0)
            - getattr(t, "guest_nice", 0.0)
        )

    def _own_s(self) -> float:
        t = self._me.cpu_times()
        return t.user + t.system

    def cores(self) -> float | None:
        wall0, busy0, own0 = self._start
        wall = time.perf_counter() - wall0
        if wall <= 0:
            return None
        return max(0.0, ((self._busy_s() - busy0) - (self._own_s() - own0)) / wall)


# ---------------------------------------------------------------------------------------------
# measurement


def measure(machine: EnvRecord | None = None, *, quick: bool = False) -> MachineLimits:
    """Measure the CPU (and every visible CUDA device) with torch's current thread count."""
    import torch

    from qbench import env

    machine = env.capture(machine)
    plan = QUICK if quick else FULL
    start = time.perf_counter()
    others = OtherLoad()
    cpu = cpu_limits(plan, machine.cpu.model)
    gpus = []
    if torch.cuda.is_available():
        gpus = [gpu_limits(i, plan) for i in range(torch.cuda.device_count())]
    limits = MachineLimits(
        fingerprint=machine.fingerprint(),
        machine=machine.machine_label(with_gpu=bool(gpus)),
        measured=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        seconds=time.perf_counter() - start,
        quick=quick,
        cpu=cpu,
        gpus=gpus,
        other_load_cores=others.cores(),
    )
    if busy(limits):
        cpu.notes.append(
            f"measured while other processes took {limits.other_load_cores:.1f} of "
            f"{machine.cpu.logical_cores or '?'} cores: these limits are low, and are kept {BUSY_KEEP_S / 60:.0f} minutes "
            "only ('qbench info --limits --remeasure' on a quiet machine replaces them)"
        )
    return limits


def cpu_limits(plan: Plan, name: str) -> DeviceLimits:
    import torch

    threads = torch.get_num_threads()
    limits = DeviceLimits(device="cpu", name=name)
    limits.bandwidth = cpu_bandwidth(plan, threads)
    for dtype, precision in ((torch.float32, "fp32"), (torch.bfloat16, "bf16"), (torch.float16, "fp16")):
        limits.peaks.append(torch_matmul_peak(plan, dtype, precision, threads))
    limits.peaks.append(torch_int8_peak(plan, threads))
    limits.peaks.append(onnxruntime_peak(plan, "fp32", threads))
    limits.peaks.append(onnxruntime_peak(plan, "int8", threads))
    if plan.quick:
        limits.notes.append("quick measurement (small buffer and shapes): not this machine's real limits")
    return limits


def last_level_cache_bytes() -> int | None:
    """The largest data/unified cache one instance of which a core sees, from ``lscpu -C``."""
    try:
        out = subprocess.run(
            ["lscpu", "-C", "-J", "--bytes"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
        caches = json.loads(out).get("caches", [])
        sizes = [int(c["one-size"]) for c in caches if c.get("type") in ("Data", "Unified")]
        if sizes:
            return max(sizes)
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        pass
    return _sysfs_cache_bytes()


def _sysfs_cache_bytes(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int | None:
    """Fallback without lscpu: cpu0's cache sizes ('32K', '2048K', '32M')."""
    sizes = []
    for index in root.glob("index*"):
        with contextlib.suppress(OSError, ValueError):
            if (index / "type").read_text().strip() == "Instruction":
                continue
            text = (index / "size").read_text().strip().upper()
            scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
            sizes.append(int(text.rstrip("KMG")) * scale)
    return max(sizes, default=None)


def bandwidth_buffer_bytes(
    plan: Plan, cache_bytes: int | None, available_bytes: int
) -> tuple[int, str | None]:
    """Twice the last-level cache, at least the plan's floor, at most its cap and a quarter of
    the available memory; the note says when that cannot stay above the cache."""
    want = max(plan.min_buffer_bytes, 2 * (cache_bytes or 0))
    size = min(want, plan.max_buffer_bytes, max(available_bytes // 4, plan.min_buffer_bytes))
    size -= size % 4096
    note = None
    if cache_bytes and size < 2 * cache_bytes:
        note = (
            f"buffer {size / MIB:.0f} MiB is less than twice the {cache_bytes / MIB:.0f} MiB last-level "
            "cache: part of each pass may be served from the cache"
        )
    return size, note


def cpu_bandwidth(plan: Plan, threads: int) -> BandwidthMeasurement:
    import psutil
    import torch

    cache = last_level_cache_bytes()
    size, note = bandwidth_buffer_bytes(plan, cache, psutil.virtual_memory().available)
    buf = torch.ones(size // 4, dtype=torch.float32)
    try:
        buf.sum()  # warm-up: page tables, threads
        rates = []
        for _ in range(plan.passes):
            t0 = time.perf_counter()
            buf.sum()
            rates.append(size / (time.perf_counter() - t0) / GB)
    finally:
        del buf
    return BandwidthMeasurement(
        gbytes_per_s=statistics.median(rates),
        passes_gbytes_per_s=rates,
        method=f"torch.sum over a float32 buffer, read once per pass; median of {plan.passes} passes",
        library=f"torch {torch.__version__}",
        buffer_bytes=size,
        bytes_per_pass=size,
        threads=threads,
        cache_bytes=cache,
        note=note or (None if cache else "last-level cache size unknown (no lscpu or sysfs cache facts)"),
    )


# ---------------------------------------------------------------------------------------------
# peaks


@dataclass
class _Best:
    rate: float = 0.0
    size: int = 0
    median_s: float = 0.0
    reps: int = 0


def _time_calls(fn: Callable[[], Any], plan: Plan, device: str = "cpu") -> tuple[float, int]:
    """Median seconds per call and how many calls were timed, with the harness's own timer
    (CUDA events on the current stream for a GPU): one warm-up call, then at least
    ``plan.min_reps`` calls filling about ``plan.shape_budget_s``, at most ``plan.max_reps``."""
    cuda = device != "cpu"
    if cuda:
        import torch

        sync: Callable[[], None] = torch.cuda.synchronize
    else:
        sync = _no_sync
    with _on_device(device):
        run = time_call(
            fn,
            sync,
            warmup=1,
            iters=plan.min_reps,
            min_seconds=plan.shape_budget_s,
            max_iters=plan.max_reps,
            cuda=cuda,
        )
    return statistics.median(run.samples_ms) / 1e3, len(run.samples_ms)


def _on_device(device: str):
    """The CUDA device context for ``device`` ("cuda:N"), nothing for the CPU."""
    if device == "cpu":
        return contextlib.nullcontext()
    import torch

    return torch.cuda.device(device)


def _sweep_sizes(
    make: Callable[[int], Callable[[], Any]],
    plan: Plan,
    first: int,
    largest: int,
    timer: Callable[[Callable[[], Any]], tuple[float, int]],
) -> tuple[_Best, dict[str, float]]:
    """Square sizes from ``first``, doubling while the next call is predicted to stay short."""
    best, trials, size = _Best(), {}, first
    while True:
        median_s, reps = timer(make(size))
        rate = OPS_PER_MAC * size**3 / median_s / GB
        trials[f"{size}x{size}x{size}"] = rate
        if rate > best.rate:
            best = _Best(rate, size, median_s, reps)
        if size * 2 > largest or median_s * 8 > plan.max_call_s:
            return best, trials
        size *= 2


def _peak(
    precision: str,
    library: str,
    op: str,
    make: Callable[[int], Callable[[], Any]],
    plan: Plan,
    threads: int,
    device: str = "cpu",
) -> PeakMeasurement:
    unit = "GOP/s" if precision == "int8" else "GFLOP/s"
    result = PeakMeasurement(
        precision=precision,
        library=library,
        op=op,
        rate=None,
        unit=unit,
        threads=threads,
        emulated=capabilities.emulated(precision, device),
    )
    if device == "cpu":
        first, largest = plan.first_size, plan.max_size
    else:
        first, largest = plan.gpu_first_size, plan.gpu_max_size

    def timer(fn: Callable[[], Any]) -> tuple[float, int]:
        return _time_calls(fn, plan, device)

    try:
        best, result.trials = _sweep_sizes(make, plan, first, largest, timer)
    except Exception as exc:  # an op this build or machine lacks: record why, measure the rest
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        result.error = f"{type(exc).__name__}: {first_line}"
        return result
    result.rate, result.shape = best.rate, [best.size] * 3
    result.median_ms, result.repetitions = best.median_s * 1e3, best.reps
    return result


def _no_sync() -> None:
    return None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensor creation is deprecated upstream
        yield


def torch_matmul_peak(plan: Plan, dtype: Any, precision: str, threads: int) -> PeakMeasurement:
    import torch

    def make(n: int) -> Callable[[], Any]:
        a = torch.randn(n, n).to(dtype)
        b = torch.randn(n, n).to(dtype)
        return lambda: torch.matmul(a, b)

    return _peak(precision, f"torch {torch.__version__} (oneDNN/MKL)", "torch.matmul", make, plan, threads)


def torch_int8_peak(plan: Plan, threads: int) -> PeakMeasurement:
    """INT8 through the eager int8 variants' kernels: quantized::linear with the x86 engine
    (uint8 activations per tensor, int8 weights, int32 accumulation, requantized output)."""
    import torch

    engine = "x86"

    def make(n: int) -> Callable[[], Any]:
        with _quiet():
            x = torch.quantize_per_tensor(torch.rand(n, n), 1 / 255, 0, torch.quint8)
            w = torch.quantize_per_tensor(torch.randn(n, n), 0.02, 0, torch.qint8)
            packed = torch.ops.quantized.linear_prepack(w, None)
        return lambda: torch.ops.quantized.linear(x, packed, 0.5, 0)

    library = f"torch {torch.__version__} (quantized engine {engine}: fbgemm/oneDNN)"
    op = "torch.ops.quantized.linear (uint8 x int8 -> uint8)"
    if engine not in torch.backends.quantized.supported_engines:
        return PeakMeasurement(
            precision="int8",
            library=library,
            op=op,
            rate=None,
            unit="GOP/s",
            threads=threads,
            error=f"the {engine} quantized engine is not built into this torch",
        )
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine  # packs and runs with the engine the variants use
    try:
        return _peak("int8", library, op, make, plan, threads)
    finally:
        torch.backends.quantized.engine = previous


def onnxruntime_peak(plan: Plan, precision: str, threads: int) -> PeakMeasurement:
    """ONNX Runtime's CPU kernels on a one-node model built in memory: MatMul (fp32) or
    MatMulInteger (uint8 x int8 -> int32, the integer matmul of its INT8 graphs)."""
    op = "ONNX MatMul (fp32)" if precision == "fp32" else "ONNX MatMulInteger (uint8 x int8 -> int32)"
    try:
        import onnxruntime as ort
    except ImportError:
        return PeakMeasurement(
            precision=precision,
            library="onnxruntime",
            op=op,
            rate=None,
            unit="GOP/s" if precision == "int8" else "GFLOP/s",
            threads=threads,
            error="onnxruntime is not installed (pip install onnxruntime)",
        )

    def make(n: int) -> Callable[[], Any]:
        import numpy as np

        model = _onnx_matmul(n, precision)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        session = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        if precision == "fp32":
            a = rng.random((n, n), dtype=np.float32)
        else:
            a = rng.integers(0, 256, (n, n), dtype=np.uint8)
        return lambda: session.run(None, {"A": a})

    return _peak(precision, f"onnxruntime {ort.__version__} (CPUExecutionProvider)", op, make, plan, threads)


def _onnx_matmul(n: int, precision: str) -> bytes:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    if precision == "fp32":
        weight = rng.random((n, n), dtype=np.float32)
        node = helper.make_node("MatMul", ["A", "B"], ["Y"])
        a_type, y_type = TensorProto.FLOAT, TensorProto.FLOAT
    else:
        weight = rng.integers(-128, 128, (n, n), dtype=np.int8)
        node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
        a_type, y_type = TensorProto.UINT8, TensorProto.INT32
    graph = helper.make_graph(
        [node],
        "qbench_matmul_peak",
        [helper.make_tensor_value_info("A", a_type, [n, n])],
        [helper.make_tensor_value_info("Y", y_type, [n, n])],
        [numpy_helper.from_array(weight, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


# ---------------------------------------------------------------------------------------------
# CUDA (written for GPU machines; guarded: only called when torch sees a CUDA device)


def gpu_limits(index: int, plan: Plan) -> DeviceLimits:
    import torch

    device = f"cuda:{index}"
    props = torch.cuda.get_device_properties(index)
    limits = DeviceLimits(device=device, name=props.name)
    try:
        limits.bandwidth = gpu_bandwidth(index, plan)
    except Exception as exc:  # out of memory on a busy device, an odd driver
        limits.notes.append(f"device bandwidth not measured: {type(exc).__name__}: {str(exc)[:200]}")
    library = f"torch {torch.__version__} (CUDA {torch.version.cuda}, cuBLAS)"
    previous_tf32 = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 is fp32: TF32 would be another precision
        for dtype, precision in ((torch.float32, "fp32"), (torch.bfloat16, "bf16"), (torch.float16, "fp16")):

            def make(n: int, dtype: Any = dtype) -> Callable[[], Any]:
                a = torch.randn(n, n, device=device, dtype=dtype)
                b = torch.randn(n, n, device=device, dtype=dtype)
                return lambda: torch.matmul(a, b)

            limits.peaks.append(_peak(precision, library, "torch.matmul", make, plan, 0, device))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous_tf32

    def make_int8(n: int) -> Callable[[], Any]:
        a = torch.randint(-128, 128, (n, n), device=device, dtype=torch.int8)
        b = torch.randint(-128, 128, (n, n), device=device, dtype=torch.int8)
        return lambda: torch._int_mm(a, b)

    limits.peaks.append(
        _peak("int8", library, "torch._int_mm (int8 x int8 -> int32)", make_int8, plan, 0, device)
    )
    torch.cuda.empty_cache()
    return limits


def gpu_bandwidth(index: int, plan: Plan) -> BandwidthMeasurement:
    """Device-to-device copy of a buffer at least 4x the L2 cache: bytes read plus written."""
    import torch

    device = f"cuda:{index}"
    props = torch.cuda.get_device_properties(index)
    l2 = int(getattr(props, "L2_cache_size", 0) or 0) or None
    free, _ = torch.cuda.mem_get_info(index)
    size = min(max(plan.min_buffer_bytes, 4 * (l2 or 0)), plan.max_buffer_bytes, free // 4)
    size -= size % 4096
    src = torch.ones(size // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    try:
        rates = []
        with torch.cuda.device(device):
            dst.copy_(src)
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            for _ in range(plan.passes):
                begin.record()
                dst.copy_(src)
                end.record()
                end.synchronize()
                rates.append(2 * size / (begin.elapsed_time(end) / 1e3) / GB)
    finally:
        del src, dst
        torch.cuda.empty_cache()
    return BandwidthMeasurement(
        gbytes_per_s=statistics.median(rates),
        passes_gbytes_per_s=rates,
        method=(
            f"device-to-device copy (Tensor.copy_), bytes read + written, CUDA events; "
            f"median of {plan.passes} passes"
        ),
        library=f"torch {torch.__version__} (CUDA {torch.version.cuda})",
        buffer_bytes=size,
        bytes_per_pass=2 * size,
        threads=0,
        cache_bytes=l2,
    )
