"""The per-batch-size GPU monitor on a fake NVML and a fake torch.cuda, and once on a real GPU."""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
import types
from collections import defaultdict
from collections.abc import Callable

import pytest

from qbench.harness import gpu_telemetry, memory
from qbench.harness.gpu_telemetry import GpuMonitor, MiB, NoGpuMonitor
from qbench.records import GpuTelemetry

UUIDS = {0: "11111111-aaaa", 1: "22222222-bbbb"}  # as torch prints them: no 'GPU-' prefix


class Series:
    """Values handed out in order, the last one repeated: a reading that rises and falls."""

    def __init__(self, values: list[float]) -> None:
        self.values, self.i = list(values), 0

    def __call__(self) -> float:
        value = self.values[min(self.i, len(self.values) - 1)]
        self.i += 1
        return value

    @property
    def done(self) -> bool:
        return self.i >= len(self.values)


class NVMLError(Exception):
    pass


class FakeNvml:
    """pynvml's calls the monitor makes; every call and every value handed out is recorded."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

    def __init__(
        self,
        *,
        process_mb: tuple[float, ...] = (100.0,),
        pid: int | None = None,
        used_memory_known: bool = True,
        unsupported: frozenset[str] = frozenset(),
    ) -> None:
        self.process_mb = Series(list(process_mb))
        self.pid = os.getpid() if pid is None else pid
        self.used_memory_known, self.unsupported = used_memory_known, unsupported
        self.series = {
            "sm": Series([1410, 1980, 1980, 1755]),
            "mem": Series([2619, 2619, 1593]),
            "power_mw": Series([60_000, 310_000, 290_000, 150_000]),
            "temp": Series([40, 55, 61, 58]),
        }
        self.calls: list[tuple] = []
        self.returned: dict[str, list[float]] = defaultdict(list)

    def _give(self, name: str, handle: str) -> float:
        assert handle == self.handle
        self.calls.append((name,))
        if name in self.unsupported:
            raise NVMLError("Not Supported")
        value = self.series[name]()
        self.returned[name].append(value)
        return value

    handle = "handle-GPU-22222222-bbbb"

    def nvmlInit(self):
        self.calls.append(("init",))

    def nvmlShutdown(self):
        self.calls.append(("shutdown",))

    def nvmlDeviceGetHandleByUUID(self, uuid):
        self.calls.append(("by-uuid", uuid))
        return f"handle-{uuid}"

    def nvmlDeviceGetHandleByIndex(self, index):
        self.calls.append(("by-index", index))
        return f"handle-index-{index}"

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        assert handle == self.handle
        self.calls.append(("processes",))
        used = self.process_mb() * MiB if self.used_memory_known else None
        other = types.SimpleNamespace(pid=1, usedGpuMemory=999 * MiB)
        return [other, types.SimpleNamespace(pid=self.pid, usedGpuMemory=used)]

    def nvmlDeviceGetClockInfo(self, handle, clock):
        return self._give({self.NVML_CLOCK_SM: "sm", self.NVML_CLOCK_MEM: "mem"}[clock], handle)

    def nvmlDeviceGetPowerUsage(self, handle):
        return self._give("power_mw", handle)

    def nvmlDeviceGetTemperature(self, handle, sensor):
        assert sensor == self.NVML_TEMPERATURE_GPU
        return self._give("temp", handle)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        assert handle == self.handle
        self.calls.append(("power-limit",))
        if "power-limit" in self.unsupported:
            raise NVMLError("Not Supported")
        return 700_000

    def count(self, name: str) -> int:
        return sum(1 for call in self.calls if call[0] == name)


class FakeCuda:
    """torch.cuda's memory functions over a pretend caching allocator; calls name their device."""

    TOTAL = 80_000 * MiB

    def __init__(self, used_mb: tuple[float, ...] = (1_000.0,), available: bool = True) -> None:
        self.used_mb = Series(list(used_mb))  # the device's own view: total - free
        self.available = available
        self.allocated = self.peak = 100 * MiB
        self.calls: list[tuple[str, int]] = []

    def is_available(self) -> bool:
        return self.available

    def current_device(self) -> int:
        return 0

    def get_device_properties(self, index):
        return types.SimpleNamespace(uuid=UUIDS[index])

    def reset_peak_memory_stats(self, index):
        self.calls.append(("reset", index))
        self.peak = self.allocated

    def allocate(self, mb: float) -> None:
        self.allocated += int(mb * MiB)
        self.peak = max(self.peak, self.allocated)

    def mem_get_info(self, index):
        self.calls.append(("mem_get_info", index))
        return self.TOTAL - int(self.used_mb() * MiB), self.TOTAL

    def max_memory_allocated(self, index):
        self.calls.append(("max_memory_allocated", index))
        return self.peak

    def max_memory_reserved(self, index):
        self.calls.append(("max_memory_reserved", index))
        return self.peak + 32 * MiB


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the sampler thread took no samples"
        time.sleep(0.001)


def _monitor(cuda: FakeCuda, nvml: FakeNvml | None, device: str = "cuda:1") -> GpuMonitor:
    monitor = GpuMonitor.for_device(device, cuda=cuda, nvml=nvml, interval_s=0.001)
    assert isinstance(monitor, GpuMonitor)
    return monitor


def test_peaks_are_the_highest_samples_not_the_last():
    cuda = FakeCuda(used_mb=(1_000, 1_200, 3_000, 2_000, 1_500))  # the first is the reading before
    nvml = FakeNvml(process_mb=(100, 300, 250, 120))
    monitor = _monitor(cuda, nvml)
    with monitor.batch() as window:
        cuda.allocate(400)
        _wait_for(lambda: cuda.used_mb.done and nvml.process_mb.done and nvml.series["power_mw"].done)
    t = window.telemetry
    assert t.device_used_delta_mb == pytest.approx(3_000 - 1_000)
    assert t.nvml_process_mb == pytest.approx(300)
    assert t.peak_allocated_mb == pytest.approx(500) and t.peak_reserved_mb == pytest.approx(532)
    assert t.temperature_c == 61
    assert t.samples == nvml.count("processes") >= 4
    # the reductions are over exactly the samples taken: medians of clocks, the mean of power
    assert t.sm_clock_mhz == statistics.median(nvml.returned["sm"])
    assert t.mem_clock_mhz == statistics.median(nvml.returned["mem"])
    assert t.power_w == pytest.approx(statistics.fmean(nvml.returned["power_mw"]) / 1e3)
    assert t.power_limit_w == pytest.approx(700.0)
    assert monitor.notes() == []
    monitor.close()
    assert nvml.calls[-1] == ("shutdown",) and nvml.count("init") == nvml.count("shutdown") == 1


def test_torch_peaks_are_reset_per_batch_size():
    cuda, nvml = FakeCuda(), FakeNvml()
    monitor = _monitor(cuda, nvml)
    with monitor.batch() as first:
        cuda.allocate(400)  # a large transient: batch size 1's peak only
        cuda.allocate(-400)
    with monitor.batch() as second:
        cuda.allocate(100)
    assert first.telemetry.peak_allocated_mb == pytest.approx(500)
    assert second.telemetry.peak_allocated_mb == pytest.approx(200)
    assert [c for c in cuda.calls if c[0] == "reset"] == [("reset", 1), ("reset", 1)]
    assert nvml.count("power-limit") == 2  # read once per batch size, not per sample


def test_device_index_and_uuid_come_from_the_device_string():
    cuda, nvml = FakeCuda(), FakeNvml()
    monitor = _monitor(cuda, nvml, device="cuda:1")
    with monitor.batch():
        pass
    # NVML by torch's UUID of device 1 (with NVML's 'GPU-' prefix), never by index
    assert ("by-uuid", "GPU-22222222-bbbb") in nvml.calls and nvml.count("by-index") == 0
    assert {index for _, index in cuda.calls} == {1}
    assert gpu_telemetry.cuda_identity("cuda", cuda) == (0, "GPU-11111111-aaaa")
    assert gpu_telemetry.nvml_uuid("GPU-x") == "GPU-x" and gpu_telemetry.nvml_uuid(None) is None


def test_unsupported_queries_are_none_with_one_note_and_not_asked_again():
    nvml = FakeNvml(unsupported=frozenset({"power_mw", "temp", "power-limit"}))
    monitor = _monitor(FakeCuda(), nvml)
    for _ in range(3):
        with monitor.batch() as window:
            _wait_for(lambda: nvml.count("processes") >= 2)
        t = window.telemetry
        assert t.power_w is None and t.temperature_c is None and t.power_limit_w is None
        assert t.sm_clock_mhz is not None and t.nvml_process_mb is not None
    notes = monitor.notes()
    assert sorted(notes) == [
        "GPU telemetry: power limit: n/a (NVMLError: Not Supported)",
        "GPU telemetry: power: n/a (NVMLError: Not Supported)",
        "GPU telemetry: temperature: n/a (NVMLError: Not Supported)",
    ]
    assert nvml.count("power_mw") == nvml.count("temp") == nvml.count("power-limit") == 1
    assert monitor.notes() == []  # handed out once


@pytest.mark.parametrize(
    ("nvml", "why"),
    [
        (FakeNvml(pid=1), f"does not list this process (pid {os.getpid()})"),
        (FakeNvml(used_memory_known=False), "has no usedGpuMemory for this process"),
    ],
)
def test_process_memory_that_nvml_does_not_give_is_noted_once(nvml, why):
    monitor = _monitor(FakeCuda(), nvml)
    with monitor.batch() as first:
        _wait_for(lambda: nvml.count("processes") >= 2)
    asked = nvml.count("processes")
    with monitor.batch() as second:
        pass
    assert first.telemetry.nvml_process_mb is None and second.telemetry.nvml_process_mb is None
    assert second.telemetry.sm_clock_mhz is not None  # the other NVML readings go on
    assert nvml.count("processes") == asked  # not asked again after a whole window without it
    [note] = monitor.notes()
    assert note.startswith("GPU telemetry: NVML per-process memory: n/a (") and why in note


def test_without_pynvml_the_torch_figures_remain(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    cuda = FakeCuda(used_mb=(1_000, 1_700))
    monitor = GpuMonitor.for_device("cuda:1", cuda=cuda, interval_s=0.001)
    with monitor.batch() as window:
        cuda.allocate(50)
        _wait_for(lambda: cuda.used_mb.done)
    t = window.telemetry
    assert t.peak_allocated_mb == pytest.approx(150) and t.device_used_delta_mb == pytest.approx(700)
    assert (t.nvml_process_mb, t.sm_clock_mhz, t.power_w, t.samples) == (None, None, None, 0)
    assert monitor.notes() == [
        "GPU telemetry: NVML per-process memory, clocks, power and temperature: n/a (pip install nvidia-ml-py)"
    ]
    monitor.close()


def test_a_gpu_nvml_cannot_open_is_noted():
    class UnknownUuid(FakeNvml):
        def nvmlDeviceGetHandleByUUID(self, uuid):
            raise NVMLError("Not Found")

    nvml = UnknownUuid()
    monitor = _monitor(FakeCuda(), nvml)
    with monitor.batch() as window:
        pass
    assert window.telemetry.samples == 0 and window.telemetry.peak_allocated_mb is not None
    [note] = monitor.notes()
    assert "NVML could not open GPU GPU-22222222-bbbb: NVMLError: Not Found" in note
    assert nvml.calls == [("init",), ("shutdown",)]  # the failed open balanced its init


def test_a_block_that_raises_stops_the_sampler_and_leaves_no_telemetry():
    monitor = _monitor(FakeCuda(), FakeNvml())
    with pytest.raises(RuntimeError, match="out of memory"), monitor.batch() as window:
        raise RuntimeError("CUDA out of memory")
    assert window.telemetry is None
    assert not any(t.name == "qbench-gpu-sampler" for t in threading.enumerate())


def test_the_cpu_monitor_is_a_no_op():
    monitor = GpuMonitor.for_device("cpu")
    assert isinstance(monitor, NoGpuMonitor)
    with monitor.batch() as window:
        pass
    assert window.telemetry is None and monitor.notes() == []
    monitor.close()
    no_cuda = GpuMonitor.for_device("cuda", cuda=FakeCuda(available=False))
    assert no_cuda.notes() == ["GPU telemetry: n/a (no CUDA device)"] and no_cuda.notes() == []


def test_summarize_reduces_each_quantity_its_own_way():
    t = gpu_telemetry.summarize(
        {
            gpu_telemetry.DEVICE_MEMORY: [2 * MiB, 10 * MiB, 4 * MiB],
            "SM clock": [1000, 1980, 1980, 1400],
            "power": [100.0, 300.0],
            "temperature": [50, 70, 60],
        },
        used_before=2 * MiB,
        peak_allocated=3 * MiB,
        peak_reserved=4 * MiB,
        nvml_readings=4,
    )
    assert (t.device_used_delta_mb, t.sm_clock_mhz, t.power_w, t.temperature_c) == (8, 1690, 200, 70)
    assert t.mem_clock_mhz is None and t.nvml_process_mb is None and t.samples == 4
    freed = gpu_telemetry.summarize(
        {gpu_telemetry.DEVICE_MEMORY: [4 * MiB]},
        used_before=10 * MiB,
        peak_allocated=0,
        peak_reserved=0,
        nvml_readings=0,
    )
    assert freed.device_used_delta_mb == 0  # memory freed during the window: no negative peak


def test_sweep_memory_is_the_highest_of_the_batch_sizes():
    windows = [
        GpuTelemetry(peak_allocated_mb=500, peak_reserved_mb=600, nvml_process_mb=None),
        GpuTelemetry(peak_allocated_mb=200, peak_reserved_mb=700, nvml_process_mb=900),
    ]
    values, notes = memory.gpu_memory("cuda:0", windows)
    assert values == {"gpu_peak_allocated_mb": 500, "gpu_peak_reserved_mb": 700, "gpu_nvml_mb": 900}
    assert notes == []
    assert memory.gpu_memory("cpu", windows)[1] == ["GPU memory: n/a (CPU run)"]


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_available(), reason="no CUDA device")
def test_real_gpu_window_sees_an_allocation():
    import torch

    torch.cuda.empty_cache()
    monitor = GpuMonitor.for_device("cuda:0")
    with monitor.batch() as window:
        block = torch.empty(256 * MiB, dtype=torch.uint8, device="cuda:0")
        time.sleep(0.05)
    del block
    t = window.telemetry
    assert t.peak_allocated_mb >= 256 and t.device_used_delta_mb >= 256
    if gpu_telemetry.import_nvml() is not None:
        assert t.samples >= 1 and t.sm_clock_mhz is not None
    monitor.close()
