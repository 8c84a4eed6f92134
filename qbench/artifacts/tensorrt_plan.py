"""``tensorrt-plan``: a serialized TensorRT engine, deserialized on the device it runs on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qbench.artifacts.base import register_format, require_artifact
from qbench.errors import BackendUnavailable, QBenchError
from qbench.records import VariantRecord
from qbench.records.io import atomic_path


@dataclass
class Plan:
    """A deserialized engine and the runtime and logger that must outlive it."""

    trt: Any  # the tensorrt module
    logger: Any
    runtime: Any
    engine: Any


def save(path: Path, serialized: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(bytes(serialized))
    return Path(path)


def load(path: Path, variant: VariantRecord, *, device: str = "cpu", threads: int | None = None) -> Plan:
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailable(
            "TensorRT needs a CUDA device and none is visible; pass --device cuda on a GPU."
        )
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendUnavailable("tensorrt is not installed; pip install 'qbench[gpu]'.") from None
    require_artifact(path, variant.mode, what="engine")
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
    if engine is None:
        raise QBenchError(
            f"engine {path} cannot be deserialized (corrupt, truncated or built by another "
            f"TensorRT/GPU); rerun 'qbench quantize --mode {variant.mode}' on this machine."
        )
    return Plan(trt, logger, runtime, engine)


FORMAT = register_format(
    "tensorrt-plan", save=save, load=load, description="serialized TensorRT engine (.plan)"
)
