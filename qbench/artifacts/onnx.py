"""``onnx``: an ONNX model file (weights inside), loaded as an ONNX Runtime InferenceSession.

The session helper is shared by the exporters (which verify every ONNX artifact in a real
session before accepting it) and the onnxruntime runner.

Sessions do not spin (SESSION_CONFIG): ONNX Runtime's intra-op workers otherwise busy-wait
after each parallel section, which saves a wake-up on an idle machine and costs dearly when the
cores are shared. Measured on the 2-core dev VM (AlexNet 224, onnx-int8, batch 1, 2 threads,
median latency as a multiple of the weight-streaming floor, each ratio taken in one process,
the two settings in alternating processes): with other processes running, 1.48-1.54x without
spinning against 2.93-3.30x with it (three pairs); in quiet spells the two were within noise
(spinning ahead by -2% to 10% over five pairs). A benchmark has to hold up on a busy machine.
Graph optimisation ORT_ENABLE_ALL, not EXTENDED: ALL adds the layout passes that run the int8
convolutions in NHWC (same measurement: 1.52-1.65x against 2.08-2.25x with EXTENDED).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qbench.artifacts.base import corrupt_artifact, register_format, require_artifact
from qbench.errors import BackendUnavailable, QBenchError
from qbench.records import VariantRecord
from qbench.records.io import atomic_path


def save(path: Path, model: Any) -> Path:
    """Write an ``onnx.ModelProto``, or a ``torch.onnx.ONNXProgram``, as one self-contained file."""
    with atomic_path(path) as tmp:
        if hasattr(model, "model_proto"):  # an ONNXProgram writes its own weights
            model.save(str(tmp), external_data=False)
        else:
            import onnx

            onnx.save_model(model, str(tmp))
    return Path(path)


# session config entries applied to every session qbench opens (see the module docstring)
SESSION_CONFIG = {"session.intra_op.allow_spinning": "0"}
GRAPH_OPTIMIZATION = "ORT_ENABLE_ALL"


def providers_for(device: str) -> list[Any]:
    import onnxruntime as ort

    if not device.startswith("cuda"):
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise BackendUnavailable(
            "ONNX Runtime has no CUDA provider here; pip install onnxruntime-gpu or pass --device cpu."
        )
    index = int(device.split(":")[1]) if ":" in device else 0
    return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]


def open_session(
    path: Path, mode: str, threads: int | None = None, device: str = "cpu", profile_prefix: str | None = None
):
    """An optimized InferenceSession, or a one-sentence error for a missing or corrupt file;
    ``profile_prefix``: the same session with ONNX Runtime's per-node profiling on."""
    import onnxruntime as ort

    path = Path(path)
    require_artifact(path, mode, what="ONNX model")
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION)
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or 0  # 0 = ORT's default (one per physical core)
    options.inter_op_num_threads = 1
    for key, value in SESSION_CONFIG.items():
        options.add_session_config_entry(key, value)
    options.log_severity_level = 3  # errors only: ORT's warnings would drown the progress display
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers_for(device))
    except QBenchError:
        raise
    except Exception as exc:  # onnxruntime raises InvalidProtobuf, Fail, InvalidGraph, ...
        raise corrupt_artifact(path, mode, exc, what="ONNX model") from None


def load(path: Path, variant: VariantRecord, *, device: str = "cpu", threads: int | None = None):
    return open_session(path, variant.mode, threads=threads, device=device)


FORMAT = register_format(
    "onnx", save=save, load=load, description="ONNX model (weights inside), run with ONNX Runtime"
)
