"""Memory of the measuring process: RSS before/after load and its peak during inference.

The peak comes from two sources, whichever is higher:

- a watcher thread sampling ``psutil`` RSS every ``interval`` (about 1 ms; the thread needs
  the GIL, which torch and onnxruntime kernels release), and
- Linux's own high-water mark ``VmHWM`` in /proc/self/status, reset before the measured
  section by writing 5 to /proc/self/clear_refs, which sees every peak however short.

GPU: over the sweep, the highest of the batch sizes' figures from
:mod:`qbench.harness.gpu_telemetry` (torch's peak allocated/reserved bytes, NVML's per-process
figure where ``pynvml`` (nvidia-ml-py) is installed, the device found by its UUID).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from qbench.records import GpuTelemetry

MB = 2**20
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def rss_bytes() -> int:
    return psutil.Process().memory_info().rss


def reset_hwm() -> bool:
    """Reset the kernel's peak-RSS counter of this process; False where that is not possible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def hwm_bytes() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@dataclass
class PeakWatcher:
    """Context manager: the peak RSS seen while it was active."""

    interval_s: float = 0.001
    use_hwm: bool = True
    # where the kernel's VmHWM is available it sees every peak at no cost, so the sampling
    # thread can stay off: on a 2-core machine it measurably slows the timed loop (~5-15%)
    sample_when_hwm: bool = True
    peak: int = 0
    samples: int = 0
    elapsed_s: float = 0.0
    hwm_used: bool = False
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def __enter__(self) -> PeakWatcher:
        self._thread = None
        self.hwm_used = self.use_hwm and reset_hwm()
        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop.clear()
        self._start = time.perf_counter()
        if not self.hwm_used or self.sample_when_hwm:
            self._thread = threading.Thread(target=self._run, name="qbench-rss-watcher", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        proc, peak, n = self._proc, self.peak, 0
        while not self._stop.is_set():
            rss = proc.memory_info().rss
            n += 1
            if rss > peak:
                peak = rss
                self.peak = peak
            time.sleep(self.interval_s)
        self.samples = n

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.elapsed_s = time.perf_counter() - self._start
        self.peak = max(self.peak, self._proc.memory_info().rss)
        if self.hwm_used:
            hwm = hwm_bytes()
            if hwm is not None:
                self.peak = max(self.peak, hwm)

    @property
    def achieved_interval_ms(self) -> float | None:
        return self.elapsed_s / self.samples * 1e3 if self.samples else None


def gpu_memory(
    device: str, windows: Sequence[GpuTelemetry] = ()
) -> tuple[dict[str, float | None], list[str]]:
    """Peak GPU memory of this process over the sweep in MiB, and notes for what could not be measured.

    ``windows`` are the batch sizes' telemetry from a :class:`~qbench.harness.gpu_telemetry.GpuMonitor`:
    it resets torch's peaks per batch size, so torch's counters would now hold the last batch size's
    only; the sweep's peaks are the highest of the windows', the NVML figure the highest of its
    samples, and the monitor's own notes say what could not be read. A GPU run without windows had
    no CUDA device to watch.
    """
    out: dict[str, float | None] = {
        "gpu_peak_allocated_mb": None,
        "gpu_peak_reserved_mb": None,
        "gpu_nvml_mb": None,
    }
    if not device.startswith("cuda"):
        return out, ["GPU memory: n/a (CPU run)"]
    if not windows:
        return out, ["GPU memory: n/a (no CUDA device)"]
    out["gpu_peak_allocated_mb"] = _highest(w.peak_allocated_mb for w in windows)
    out["gpu_peak_reserved_mb"] = _highest(w.peak_reserved_mb for w in windows)
    out["gpu_nvml_mb"] = _highest(w.nvml_process_mb for w in windows)
    return out, []


def _highest(values: Iterable[float | None]) -> float | None:
    return max((v for v in values if v is not None), default=None)
