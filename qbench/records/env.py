"""The environment a number was measured in: machine, libraries, threads (EnvRecord)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from qbench.records.base import Record


@dataclass
class CpuInfo(Record):
    model: str
    flags: dict[str, bool] = field(default_factory=dict)  # the ISA extensions qbench cares about
    physical_cores: int | None = None
    logical_cores: int | None = None
    affinity_cores: int | None = None
    ram_gb: float | None = None


@dataclass
class GpuInfo(Record):
    index: int  # as torch numbers it (after CUDA_VISIBLE_DEVICES)
    name: str
    memory_gb: float
    capability: str
    uuid: str | None = None  # NVML and torch agree on the UUID, not on the index
    driver: str | None = None
    sm_clock_mhz: int | None = None
    max_sm_clock_mhz: int | None = None
    mem_clock_mhz: int | None = None
    nvml: str | None = None  # why NVML facts are missing, when they are


@dataclass
class GitInfo(Record):
    commit: str
    dirty: bool


@dataclass
class EnvRecord(Record):
    platform: str
    hostname: str
    python: str
    cpu: CpuInfo
    qbench_version: str
    cuda_version: str | None = None  # the CUDA runtime torch was built with; None for a CPU build
    gpus: list[GpuInfo] = field(default_factory=list)
    libraries: dict[str, str | None] = field(default_factory=dict)
    qbench_git: GitInfo | None = None
    backends: dict[str, str | None] = field(default_factory=dict)  # requirement -> None or why missing
    # facts of the measuring process
    torch_threads: int | None = None
    torch_interop_threads: int | None = None
    quantized_engine: str | None = None
    env_vars: dict[str, str] = field(default_factory=dict)

    def machine_label(self, with_gpu: bool = False) -> str:
        """'<CPU model> (<hostname>)', with the first GPU's name for a CUDA run."""
        parts = [self.cpu.model]
        if with_gpu and self.gpus:
            parts.append(self.gpus[0].name)
        return f"{' + '.join(parts)} ({self.hostname})"

    def fingerprint(self) -> str:
        """What a latency depends on: CPU model and flags, GPUs, threads, library versions."""
        key = {
            "cpu": [self.cpu.model, sorted(k for k, v in self.cpu.flags.items() if v)],
            "gpus": [g.name for g in self.gpus],
            "threads": self.torch_threads,
            "libraries": self.libraries,
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
