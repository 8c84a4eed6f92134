"""Memory cells of a variant (reference 000's "Memory Usage Analysis"), printed with reasons."""

from __future__ import annotations

from dataclasses import dataclass

from qbench.records import BenchResult
from qbench.reports import fmt


@dataclass
class MemoryCells:
    disk: str
    cpu_runtime: str  # peak RSS during inference minus RSS before load
    rss_before_load: str
    rss_after_load: str
    rss_peak: str
    gpu_runtime: str  # peak allocated by torch's caching allocator
    gpu_reserved: str
    gpu_nvml: str


def memory_cells(r: BenchResult, unavailable: str) -> MemoryCells:
    m = r.memory
    on_gpu = r.device.startswith("cuda")
    gpu_reason = unavailable or ("not recorded" if on_gpu else "no CUDA device")
    cpu_reason = unavailable or "not recorded"
    return MemoryCells(
        disk=fmt.mb(r.size_mb, unavailable or "no artifact"),
        cpu_runtime=fmt.mb(m.runtime_mb, cpu_reason),
        rss_before_load=fmt.mb(m.rss_before_load_mb, cpu_reason),
        rss_after_load=fmt.mb(m.rss_after_load_mb, cpu_reason),
        rss_peak=fmt.mb(m.rss_peak_mb, cpu_reason),
        gpu_runtime=fmt.mb(m.gpu_peak_allocated_mb, gpu_reason),
        gpu_reserved=fmt.mb(m.gpu_peak_reserved_mb, gpu_reason),
        gpu_nvml=fmt.mb(m.gpu_nvml_mb, gpu_reason if not on_gpu else "NVML not available"),
    )
