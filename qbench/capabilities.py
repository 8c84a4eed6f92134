"""What can run on this machine: each requirement name maps to a check returning a reason
string when it is missing (None when present). Exporters declare their requirements and
are reported as 'skipped: <reason>' instead of crashing."""

from __future__ import annotations

import importlib.util
import platform
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
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo ('flags' on x86, 'Features' on Arm); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_has_vnni() -> bool:
    """u8 x s8 dot products without intermediate saturation (AVX512-VNNI / AVX-VNNI / AMX); without
    them INT8 activations use a reduced range (7 bits) to avoid overflow."""
    return bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


# the CPU features that give a reduced precision native arithmetic; without any of them PyTorch
# (and ONNX Runtime's CPU kernels) convert to FP32 and back around each op, often slower than FP32
NATIVE_ARITHMETIC = {
    "x86": {"fp16": ("avx512_fp16", "amx_fp16"), "bf16": ("avx512_bf16", "amx_bf16")},
    "arm": {"fp16": ("asimdhp",), "bf16": ("bf16",)},
}


def cpu_family(machine: str | None = None) -> str | None:
    machine = (machine or platform.machine()).lower()
    if machine in ("x86_64", "amd64", "i686", "x86"):
        return "x86"
    if machine.startswith(("aarch64", "arm64")):
        return "arm"
    return None


# GPU back-ends that run a precision's graph without its arithmetic: ONNX Runtime's CUDA provider
# has no int8 convolution or GEMM kernels for QDQ graphs; it dequantizes and computes in fp32
# (only its TensorRT provider, or TensorRT itself, fuses QDQ into int8 kernels)
GPU_EMULATED = {
    ("onnxruntime", "int8"): "ONNX Runtime's CUDA provider runs the QDQ graph's DequantizeLinear, "
    "then fp32 kernels: int8 storage, fp32 arithmetic",
}


def emulated(
    precision: str | None,
    device: str = "cpu",
    flags: frozenset[str] | None = None,
    family: str | None = None,
    runner: str | None = None,
) -> str | None:
    """'emulated: <reason>' when a variant computing in ``precision`` (its activations, e.g. 'fp16'
    or 'bf16 ...') has no native arithmetic where it runs: this machine's CPU lacks the
    instructions, or the GPU ``runner`` has no kernels for it. None when it has, or when that is
    not known (an unknown CPU family, a precision not listed)."""
    if not precision:
        return None
    if device.startswith("cuda"):
        reason = GPU_EMULATED.get((runner or "", precision.split()[0].lower()))
        return f"emulated: {reason}" if reason else None
    if not device.startswith("cpu"):
        return None
    name = precision.split()[0].lower()
    family = family or cpu_family()
    needs = NATIVE_ARITHMETIC.get(family or "", {}).get(name)
    if not needs:
        return None
    flags = cpu_flags() if flags is None else flags
    if flags & set(needs):
        return None
    return f"emulated: this CPU has no {' or '.join(needs)}, so {name} arithmetic runs through conversions to fp32"


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
