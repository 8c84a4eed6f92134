"""What can run on this machine: each requirement name maps to a check returning a reason
string when it is missing (None when present). Exporters declare their requirements and
are reported as 'skipped: <reason>' instead of crashing."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from functools import cache
from pathlib import Path


def _module(name: str, hint: str) -> Callable[[], str | None]:
    def check() -> str | None:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        return None if found else f"{name} is not installed ({hint})"

    return check


def _cuda() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device"
    return None


def _ao_eager() -> str | None:
    # torch.ao.quantization eager mode is deprecated upstream: feature-detect, never assume
    try:
        from torch.ao.quantization import convert, fuse_modules, get_default_qconfig, prepare  # noqa: F401
    except ImportError:
        return "torch.ao.quantization eager mode is not available in this torch"
    import torch

    if "x86" not in torch.backends.quantized.supported_engines:
        return "the x86 quantized engine is not built into this torch"
    return None


def _ort_cuda() -> str | None:
    if _module("onnxruntime", "")() is not None:
        return "onnxruntime is not installed (pip install 'qbench[gpu]')"
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "ONNX Runtime has no CUDA provider (pip install onnxruntime-gpu)"
    return _cuda()


CHECKS: dict[str, Callable[[], str | None]] = {
    "cuda": _cuda,
    "tensorrt": _module("tensorrt", "pip install 'qbench[gpu]' on a CUDA machine"),
    "onnx": _module("onnx", "pip install onnx"),
    "onnxruntime": _module("onnxruntime", "pip install onnxruntime"),
    "onnxruntime-cuda": _ort_cuda,
    "torchao": _module("torchao", "pip install torchao"),
    "ao-eager": _ao_eager,
}


@cache
def cpu_has_vnni() -> bool:
    """u8 x s8 dot products without intermediate saturation (AVX512-VNNI / AVX-VNNI / AMX); without
    them INT8 activations use a reduced range (7 bits) to avoid overflow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))


def register_capability(name: str, check: Callable[[], str | None]) -> None:
    """Add a requirement an exporter can declare; its module registers it beside the exporter,
    so a mode with its own feature probe is still one module."""
    if name in CHECKS and CHECKS[name] is not check:
        raise ValueError(f"capability {name!r} is registered twice")
    CHECKS[name] = check


@cache
def missing(requirement: str) -> str | None:
    """The reason ``requirement`` is unmet here, or None when it is met.

    A requirement registered by an exporter module is unknown in a process that never imported
    that module (a bench worker): its conversion already checked it, so it counts as met."""
    check = CHECKS.get(requirement)
    return None if check is None else check()


def first_missing(requirements: tuple[str, ...]) -> str | None:
    for req in requirements:
        reason = missing(req)
        if reason:
            return reason
    return None
