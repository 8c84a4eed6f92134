"""Environment capture: the facts a latency number depends on, saved beside every result.

Cheap on purpose: library versions come from package metadata (no imports of onnxruntime or
tensorrt), and GPU facts are read only when torch already sees a CUDA device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata as md
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from qbench import __version__
from qbench.records.env import CpuInfo, EnvRecord, GitInfo, GpuInfo

CPU_FLAGS = (
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_int8",
    "amx_fp16",
    "amx_bf16",
    "amx_tile",
)
LIBRARIES = ("torch", "torchvision", "torchao", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "numpy")
ENV_PATTERN = re.compile(
    r"^(OMP_NUM_THREADS|MKL_NUM_THREADS|CUDA_VISIBLE_DEVICES|KMP_.*|ONEDNN_.*|DNNL_.*|QBENCH_.*)$"
)


def cpu_info() -> CpuInfo:
    import psutil

    model, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name":
                model = value.strip()
            elif key == "flags":
                flags = set(value.split())
                break
    return CpuInfo(
        model=model,
        flags={f: f in flags for f in CPU_FLAGS},
        physical_cores=psutil.cpu_count(logical=False),
        logical_cores=psutil.cpu_count(logical=True),
        affinity_cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        ram_gb=round(psutil.virtual_memory().total / 2**30, 2),
    )


def gpu_info() -> list[GpuInfo]:
    import torch

    if not torch.cuda.is_available():
        return []
    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        uuid = str(getattr(props, "uuid", "") or "") or None
        if uuid and not uuid.startswith("GPU-"):
            uuid = f"GPU-{uuid}"
        gpus.append(
            GpuInfo(
                index=i,
                name=props.name,
                memory_gb=round(props.total_memory / 2**30, 2),
                capability=f"{props.major}.{props.minor}",
                uuid=uuid,
                **_nvml_facts(uuid),
            )
        )
    return gpus


def _nvml_facts(uuid: str | None) -> dict[str, Any]:
    try:
        import pynvml
    except ImportError:
        return {"nvml": "n/a (pip install nvidia-ml-py)"}
    if uuid is None:
        return {"nvml": "n/a (torch reports no GPU UUID to match NVML's device by)"}
    try:
        pynvml.nvmlInit()
        try:
            # by UUID: NVML numbers all devices, torch only the visible ones (CUDA_VISIBLE_DEVICES)
            h = pynvml.nvmlDeviceGetHandleByUUID(uuid)
            driver = pynvml.nvmlSystemGetDriverVersion()
            return {
                "driver": driver.decode() if isinstance(driver, bytes) else driver,
                "sm_clock_mhz": pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM),
                "max_sm_clock_mhz": pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_SM),
                "mem_clock_mhz": pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_MEM),
            }
        finally:
            with contextlib.suppress(Exception):
                pynvml.nvmlShutdown()
    except Exception as exc:  # pynvml raises NVMLError subclasses per unsupported query
        return {"nvml": f"n/a ({exc})"}


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in LIBRARIES:
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    return out


def git_commit() -> GitInfo | None:
    """The commit of the repository qbench runs from (None for an installed wheel)."""
    repo = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return GitInfo(commit=commit.stdout.strip(), dirty=bool(dirty.stdout.strip()))


def env_vars() -> dict[str, str]:
    return {k: v for k, v in sorted(os.environ.items()) if ENV_PATTERN.match(k)}


def backends() -> dict[str, str | None]:
    """Each requirement an exporter or runner may declare -> None when met, else the reason."""
    from qbench import capabilities

    return {name: capabilities.missing(name) for name in capabilities.CHECKS}


def process_facts() -> dict[str, Any]:
    """What differs between processes of one run: the thread settings of the measuring one."""
    import torch

    return {
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "quantized_engine": torch.backends.quantized.engine,
        "env_vars": env_vars(),
    }


def capture(machine: EnvRecord | None = None) -> EnvRecord:
    """The whole environment; pass ``machine`` (an earlier capture) to reuse its slow parts
    (back-end probes, git, metadata) and refresh only this process's facts."""
    import torch

    if machine is None:
        machine = EnvRecord(
            platform=platform.platform(),
            hostname=platform.node(),
            python=sys.version.split()[0],
            cpu=cpu_info(),
            qbench_version=__version__,
            cuda_version=torch.version.cuda,
            gpus=gpu_info(),
            libraries=library_versions(),
            qbench_git=git_commit(),
            backends=backends(),
        )
    return dataclasses.replace(machine, **process_facts())
