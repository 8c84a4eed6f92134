"""Energy per image from the hardware's own counters: RAPL on CPUs, NVML on NVIDIA GPUs.

RAPL (``/sys/class/powercap/intel-rapl:<n>/energy_uj``; Intel, and AMD since Linux 5.8) counts
microjoules per package and wraps at ``max_energy_range_uj``; the package domains are summed
(the psys and sub-domains would count the same joules twice). Since Linux 5.10 the counters are
readable by root only, so an unreadable counter is "n/a" with that reason, never an error.
NVML's ``nvmlDeviceGetTotalEnergyConsumption`` counts millijoules since the driver loaded
(Volta and newer). Both count everything the package or GPU did in the window, other
processes included: the record says so.

The readers take their sources as arguments (a sysfs root, an NVML module), so tests drive
them with a fake powercap tree and fake counters.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qbench.harness.gpu_telemetry import NvmlDevice, cuda_identity, import_nvml
from qbench.records import EnergyPoint, EnergyStats

POWERCAP = Path("/sys/class/powercap")
_TOP_DOMAIN = re.compile(r"^intel-rapl:\d+$")
WINDOW = "the cold call, the warm-up calls and the timed loop of each batch size (images = all calls' images)"
NO_RAPL = "n/a (no RAPL counters on this machine)"


@dataclass
class RaplDomain:
    path: Path
    name: str
    max_range_uj: int


class RaplReader:
    """Package energy from a powercap tree; ``reason`` is set when it cannot be read."""

    def __init__(self, root: Path = POWERCAP) -> None:
        self.root = Path(root)
        self.domains: list[RaplDomain] = []
        self.reason: str | None = None
        try:
            self._discover()
        except OSError as exc:
            self.domains, self.reason = [], _unreadable(exc)

    def _discover(self) -> None:
        tops = sorted(p for p in self.root.glob("intel-rapl:*") if _TOP_DOMAIN.match(p.name))
        if not self.root.is_dir() or not tops:
            self.reason = NO_RAPL
            return
        for path in tops:
            name = (path / "name").read_text().strip()
            if name.startswith("package"):
                self.domains.append(RaplDomain(path, name, _read_int(path / "max_energy_range_uj")))
        if not self.domains:
            self.reason = "n/a (the RAPL counters on this machine have no package domain)"
            return
        self.read()  # unreadable energy_uj (root only since Linux 5.10): n/a now, not mid-bench

    @property
    def source(self) -> str:
        names = ", ".join(f"{d.name} ({d.path})" for d in self.domains)
        return f"RAPL {names}"

    scope = "the whole CPU package(s): every process and core on it, not only this benchmark"

    def read(self) -> list[int]:
        return [_read_int(d.path / "energy_uj") for d in self.domains]

    def joules(self, before: list[int], after: list[int]) -> float:
        """Energy between two readings, summed over the packages; a counter that went down wrapped
        once at its max_energy_range_uj (the window must be shorter than one wrap period)."""
        total = 0
        for domain, b, a in zip(self.domains, before, after, strict=True):
            delta = a - b
            if delta < 0:
                delta += domain.max_range_uj
            total += delta
        return total / 1e6


class NvmlReader:
    """One GPU's total energy counter through NVML (pynvml, the nvidia-ml-py package)."""

    scope = "the whole GPU: every process on it, not only this benchmark"

    def __init__(self, index: int = 0, uuid: str | None = None, nvml: Any = None) -> None:
        self.reason: str | None = None
        self.device: NvmlDevice | None = None
        self.label = f"GPU {uuid or index}"
        if nvml is None:
            nvml = import_nvml()
        if nvml is None:
            self.reason = "n/a (NVML is not available: pip install nvidia-ml-py)"
            return
        try:
            self.device = NvmlDevice.open(index, uuid, nvml)
            self.read()
        except Exception as exc:  # NVMLError_NotSupported before Volta, no driver, ...
            self.close()
            self.device, self.reason = None, f"n/a (NVML has no energy counter for {self.label}: {exc})"

    @property
    def source(self) -> str:
        return f"NVML nvmlDeviceGetTotalEnergyConsumption ({self.label})"

    def read(self) -> list[int]:
        assert self.device is not None
        return [int(self.device.nvml.nvmlDeviceGetTotalEnergyConsumption(self.device.handle))]

    def joules(self, before: list[int], after: list[int]) -> float:
        return (after[0] - before[0]) / 1e3  # millijoules; a 64-bit counter does not wrap

    def close(self) -> None:
        if self.device is not None:
            self.device.close()


@dataclass
class Meter:
    """Energy of each batch size's window; ``reader`` is None when the machine has no counter."""

    reader: Any
    reason: str | None
    points: list[EnergyPoint] = field(default_factory=list)
    failed: str | None = None
    clock: Callable[[], float] = time.perf_counter

    @classmethod
    def for_device(cls, device: str, rapl_root: Path = POWERCAP) -> Meter:
        if device.startswith("cuda"):
            reader: Any = NvmlReader(*cuda_identity(device))
        else:
            reader = RaplReader(rapl_root)
        if reader.reason:
            return cls(None, reader.reason)
        return cls(reader, None)

    def start(self) -> tuple[list[int], float] | None:
        if self.reader is None or self.failed:
            return None
        try:
            return self.reader.read(), self.clock()
        except Exception as exc:  # a counter that stopped answering mid-run
            self.failed = _unreadable(exc)
            return None

    def stop(self, started: tuple[list[int], float] | None, batch_size: int, calls: int) -> None:
        if started is None or self.failed:
            return
        try:
            after = self.reader.read()
        except Exception as exc:
            self.failed = _unreadable(exc)
            return
        seconds = self.clock() - started[1]
        joules = self.reader.joules(started[0], after)
        images = batch_size * calls
        self.points.append(
            EnergyPoint(
                batch_size=batch_size,
                joules=joules,
                seconds=seconds,
                images=images,
                joules_per_image=joules / images if images else float("nan"),
                watts=joules / seconds if seconds > 0 else float("nan"),
            )
        )

    def stats(self) -> EnergyStats:
        if self.reader is None:
            return EnergyStats(source=None, reason=self.reason)
        if isinstance(self.reader, NvmlReader):
            self.reader.close()
        if self.failed:
            return EnergyStats(source=self.reader.source, reason=self.failed, scope=self.reader.scope)
        return EnergyStats(
            source=self.reader.source, window=WINDOW, scope=self.reader.scope, points=list(self.points)
        )


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


def _unreadable(exc: BaseException) -> str:
    if isinstance(exc, PermissionError):
        return (
            f"n/a (the RAPL counter {exc.filename} is readable by root only (Linux 5.10 and later): "
            "run as root or grant read access to energy_uj)"
        )
    return f"n/a (the energy counter could not be read: {type(exc).__name__}: {exc})"
