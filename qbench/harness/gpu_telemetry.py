"""What the GPU did while one batch size ran: memory, clocks, power and temperature.

torch's allocator counters (reset here per batch size) see only what torch allocates: TensorRT's
engine memory and ONNX Runtime's arena never pass through them. Two device-side views see those
too: cudaMemGetInfo (``torch.cuda.mem_get_info``: the whole device, other processes included)
and NVML's ``usedGpuMemory`` of this process. A reading before and after would miss a peak and
the clocks the loop actually ran at, so one thread samples both views, the SM and memory clocks,
the power and the temperature about every 10 ms while the batch size runs. NVML calls go through
ctypes, which releases the GIL, and one sample is a handful of calls: light beside the timed loop.

NVML finds the GPU by its UUID: NVML numbers every GPU in the machine, torch only the visible
ones (CUDA_VISIBLE_DEVICES), so torch's index 0 may be another GPU to NVML. The NVML handle code
here is the one the energy meter and the sweep's memory figures use too.

The sources (an NVML module, a ``torch.cuda``-like object, the sampling interval) are
constructor arguments, so tests drive the whole monitor on the CPU with fakes.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from qbench.records import GpuTelemetry
from qbench.records.variant import device_index

MiB = 2**20
SAMPLE_INTERVAL_S = 0.01
NO_NVML = "n/a (pip install nvidia-ml-py)"
# what the sampler reads from NVML, as the notes name it
NVML_QUANTITIES = "NVML per-process memory, clocks, power and temperature"


def nvml_uuid(torch_uuid: object) -> str | None:
    """torch's device UUID as NVML spells it ('GPU-<hex groups>'); None when torch has none."""
    text = str(torch_uuid or "")
    if not text:
        return None
    return text if text.startswith("GPU-") else f"GPU-{text}"


def cuda_identity(device: str, cuda: Any = None) -> tuple[int, str | None]:
    """torch's index of ``device`` and its UUID as NVML spells it."""
    if cuda is None:
        import torch

        cuda = torch.cuda
    index = device_index(device, cuda.current_device)
    return index, nvml_uuid(getattr(cuda.get_device_properties(index), "uuid", None))


def import_nvml() -> Any | None:
    """The ``pynvml`` module of nvidia-ml-py, or None where it is not installed."""
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


@dataclass
class NvmlDevice:
    """An open NVML handle to one GPU. NVML counts its inits: ``close`` balances this one."""

    nvml: Any
    handle: Any
    label: str
    _open: bool = field(default=True, repr=False)

    @classmethod
    def open(cls, index: int, uuid: str | None, nvml: Any) -> NvmlDevice:
        """``nvmlInit`` and the handle of the GPU with this UUID (by torch's index only where torch
        gave no UUID); raises NVML's error, with NVML already shut down again."""
        nvml.nvmlInit()
        try:
            handle = nvml.nvmlDeviceGetHandleByUUID(uuid) if uuid else nvml.nvmlDeviceGetHandleByIndex(index)
        except Exception:
            with contextlib.suppress(Exception):
                nvml.nvmlShutdown()
            raise
        return cls(nvml, handle, f"GPU {uuid or index}")

    def close(self) -> None:
        if self._open:
            self._open = False
            with contextlib.suppress(Exception):  # shutting down is best effort
                self.nvml.nvmlShutdown()


def find_process(entries: Iterable[Any], pid: int) -> Any | None:
    """The entry of ``pid`` among NVML's running compute processes, or None where it is not listed."""
    return next((entry for entry in entries if entry.pid == pid), None)


# NVML gauges sampled each tick: the note's name -> a reading from (nvml module, handle)
GAUGES: dict[str, Callable[[Any, Any], float]] = {
    "SM clock": lambda nvml, h: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM),
    "memory clock": lambda nvml, h: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_MEM),
    "power": lambda nvml, h: nvml.nvmlDeviceGetPowerUsage(h) / 1e3,  # milliwatts
    "temperature": lambda nvml, h: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU),
}
DEVICE_MEMORY = "device memory (cudaMemGetInfo)"
PROCESS_MEMORY = "NVML per-process memory"
POWER_LIMIT = "power limit"


@dataclass
class Window:
    """One batch size's telemetry: ``telemetry`` is filled when its ``batch()`` block ends
    (None on a CPU, or when the block raised)."""

    telemetry: GpuTelemetry | None = None


@dataclass
class _Samples:
    """What one window collected. The sampler thread writes it until it is joined; the main thread
    then turns its failures into the monitor's notes (and quantities no longer asked)."""

    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: dict[str, str] = field(default_factory=dict)
    nvml_readings: int = 0
    process_unlisted: int = 0  # samples where NVML did not list this process
    process_no_value: int = 0  # listed, but NVML had no usedGpuMemory for it


class GpuMonitor:
    """Telemetry of one CUDA device, one ``batch()`` window per batch size.

    A quantity that cannot be read (NVML without the query, no pynvml) is None in every window
    from then on and gets one note, handed out by :meth:`notes`.
    """

    def __init__(
        self,
        index: int,
        uuid: str | None,
        *,
        cuda: Any,
        nvml: Any | None,
        interval_s: float = SAMPLE_INTERVAL_S,
    ) -> None:
        self.index = index
        self.cuda = cuda
        self.interval_s = interval_s
        self.pid = os.getpid()
        self._disabled: set[str] = set()
        self._notes: list[str] = []
        self._handed_out = 0
        self.device: NvmlDevice | None = None
        if nvml is None:
            self._note(NVML_QUANTITIES, NO_NVML)
            return
        try:
            self.device = NvmlDevice.open(index, uuid, nvml)
        except Exception as exc:  # no driver, a UUID NVML does not know (MIG), ...
            self._note(NVML_QUANTITIES, f"n/a (NVML could not open GPU {uuid or index}: {_why(exc)})")

    @classmethod
    def for_device(
        cls, device: str, *, cuda: Any = None, nvml: Any = None, interval_s: float = SAMPLE_INTERVAL_S
    ) -> GpuMonitor | NoGpuMonitor:
        """The monitor of ``device`` ('cuda:1' is torch's device 1); a no-op one on the CPU.
        ``cuda`` defaults to ``torch.cuda``, ``nvml`` to pynvml where it is installed."""
        if not device.startswith("cuda"):
            return NoGpuMonitor()
        if cuda is None:
            import torch

            cuda = torch.cuda
        if not cuda.is_available():
            return NoGpuMonitor("GPU telemetry: n/a (no CUDA device)")
        index, uuid = cuda_identity(device, cuda)
        if nvml is None:
            nvml = import_nvml()
        return cls(index, uuid, cuda=cuda, nvml=nvml, interval_s=interval_s)

    @contextlib.contextmanager
    def batch(self) -> Iterator[Window]:
        """Watch one batch size: torch's peaks reset, the device view before, then samples until
        the block ends; ``window.telemetry`` is filled only when the block did not raise."""
        window, samples = Window(), _Samples()
        self.cuda.reset_peak_memory_stats(self.index)
        self._read(samples, DEVICE_MEMORY, self._device_used_bytes)
        used_before = max(samples.values[DEVICE_MEMORY], default=None)
        if self.device is not None:
            self._read(samples, POWER_LIMIT, self._power_limit_w)  # once per batch size: it rarely moves
        stop = threading.Event()
        sampler = threading.Thread(
            target=self._sample_until, args=(samples, stop), name="qbench-gpu-sampler", daemon=True
        )
        sampler.start()
        try:
            yield window
        finally:
            stop.set()
            sampler.join()
        self._sample(samples)  # the state at the end, so even a window shorter than one interval has one
        self._note_unreadable(samples)
        window.telemetry = self._telemetry(samples, used_before)

    def notes(self) -> list[str]:
        """The notes not handed out yet: one per quantity that could not be read."""
        fresh = self._notes[self._handed_out :]
        self._handed_out = len(self._notes)
        return fresh

    def close(self) -> None:
        if self.device is not None:
            self.device.close()

    def _sample_until(self, samples: _Samples, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            self._sample(samples)

    def _sample(self, samples: _Samples) -> None:
        self._read(samples, DEVICE_MEMORY, self._device_used_bytes)
        if self.device is None:
            return
        samples.nvml_readings += 1
        self._read(samples, PROCESS_MEMORY, lambda: self._process_mb(samples))
        nvml, handle = self.device.nvml, self.device.handle
        for name, gauge in GAUGES.items():
            self._read(samples, name, lambda gauge=gauge: gauge(nvml, handle))

    def _read(self, samples: _Samples, name: str, read: Callable[[], float | None]) -> None:
        """One reading into ``samples``; a failing query is not asked again (its note says why)."""
        if name in self._disabled or name in samples.failures:
            return
        try:
            value = read()
        except Exception as exc:  # NVMLError_NotSupported, NoPermission, ...
            samples.failures[name] = f"n/a ({_why(exc)})"
            return
        if value is not None:
            samples.values[name].append(value)

    def _device_used_bytes(self) -> int:
        free, total = self.cuda.mem_get_info(self.index)
        return total - free

    def _power_limit_w(self) -> float:
        assert self.device is not None
        return self.device.nvml.nvmlDeviceGetEnforcedPowerLimit(self.device.handle) / 1e3  # milliwatts

    def _process_mb(self, samples: _Samples) -> float | None:
        assert self.device is not None
        entries = self.device.nvml.nvmlDeviceGetComputeRunningProcesses(self.device.handle)
        entry = find_process(entries, self.pid)
        if entry is None:
            samples.process_unlisted += 1
            return None
        if entry.usedGpuMemory is None:  # pynvml's NVML_VALUE_NOT_AVAILABLE
            samples.process_no_value += 1
            return None
        return entry.usedGpuMemory / MiB

    def _note_unreadable(self, samples: _Samples) -> None:
        for name, why in samples.failures.items():
            self._note(name, why)
        if self.device is None or samples.values[PROCESS_MEMORY] or PROCESS_MEMORY in self._disabled:
            return
        # a whole window without this process's figure: later windows would not have it either
        if samples.process_no_value:
            self._note(
                PROCESS_MEMORY, f"n/a (NVML has no usedGpuMemory for this process on {self.device.label})"
            )
        elif samples.process_unlisted:
            self._note(
                PROCESS_MEMORY,
                f"n/a (NVML does not list this process (pid {self.pid}) on {self.device.label}, "
                "e.g. inside a container, whose process ids NVML does not see)",
            )

    def _note(self, name: str, why: str) -> None:
        self._disabled.add(name)
        self._notes.append(f"GPU telemetry: {name}: {why}")

    def _telemetry(self, samples: _Samples, used_before: int | None) -> GpuTelemetry:
        return summarize(
            samples.values,
            used_before=used_before,
            peak_allocated=self.cuda.max_memory_allocated(self.index),
            peak_reserved=self.cuda.max_memory_reserved(self.index),
            nvml_readings=samples.nvml_readings,
        )


def summarize(
    values: dict[str, list[float]],
    *,
    used_before: int | None,
    peak_allocated: int,
    peak_reserved: int,
    nvml_readings: int,
) -> GpuTelemetry:
    """One window's record: memory as peaks, clocks as medians (robust to the idle first and last
    samples), power as the mean (the energy meter's view), temperature as the highest."""
    used = values.get(DEVICE_MEMORY, [])
    # the reading before is part of the window: memory freed during it does not make the delta negative
    delta = (max(*used, used_before) - used_before) / MiB if used and used_before is not None else None
    return GpuTelemetry(
        peak_allocated_mb=peak_allocated / MiB,
        peak_reserved_mb=peak_reserved / MiB,
        device_used_delta_mb=delta,
        nvml_process_mb=_or_none(max, values.get(PROCESS_MEMORY)),
        sm_clock_mhz=_or_none(statistics.median, values.get("SM clock")),
        mem_clock_mhz=_or_none(statistics.median, values.get("memory clock")),
        power_w=_or_none(statistics.fmean, values.get("power")),
        power_limit_w=_or_none(max, values.get(POWER_LIMIT)),
        temperature_c=_or_none(max, values.get("temperature")),
        samples=nvml_readings,
    )


class NoGpuMonitor:
    """The monitor of a run without a GPU: every window's telemetry is None."""

    def __init__(self, reason: str | None = None) -> None:
        self._notes = [reason] if reason else []

    @contextlib.contextmanager
    def batch(self) -> Iterator[Window]:
        yield Window()

    def notes(self) -> list[str]:
        fresh, self._notes = self._notes, []
        return fresh

    def close(self) -> None:
        pass


def _or_none(reduce: Callable[[list[float]], float], values: list[float] | None) -> float | None:
    return float(reduce(values)) if values else None


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
