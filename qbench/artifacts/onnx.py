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
from qbench.records.variant import device_index


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


# ONNX Runtime's name for each provider qbench requests, by qbench's short name
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


def providers_for(
    device: str,
    provider: str | None = None,
    cuda_stream: int | None = None,
    options: dict[str, Any] | None = None,
) -> list[Any]:
    """The providers list for a session on ``device``: the requested GPU provider first (``cuda``
    by default on a GPU, or ``tensorrt``) with the device and, where given, the CUDA stream it
    must enqueue on (a torch stream's handle; 0, the default stream, is not accepted by ONNX
    Runtime), then the CPU provider for any node the GPU one does not take."""
    import onnxruntime as ort

    provider = provider or ("cuda" if device.startswith("cuda") else "cpu")
    if provider == "cpu":
        return [PROVIDERS["cpu"]]
    name = PROVIDERS[provider]
    if name not in ort.get_available_providers():
        package = "onnxruntime-gpu" if provider == "cuda" else "onnxruntime-gpu and TensorRT"
        raise BackendUnavailable(
            f"ONNX Runtime has no {name} here; pip install {package} or pass --device cpu."
        )
    # a bare 'cuda' is ONNX Runtime's default device 0; runners pass 'cuda:N' of their own stream
    settings: dict[str, Any] = {"device_id": device_index(device, lambda: 0), **(options or {})}
    if cuda_stream:  # ONNX Runtime sets has_user_compute_stream itself
        settings["user_compute_stream"] = str(cuda_stream)
    gpu = [(name, settings)]
    if provider == "tensorrt":  # nodes TensorRT does not take run on CUDA, then the CPU
        gpu.append((PROVIDERS["cuda"], {k: v for k, v in settings.items() if not k.startswith("trt_")}))
    return [*gpu, PROVIDERS["cpu"]]


def check_providers(requested: list[Any], loaded: list[str]) -> None:
    """A session must run on the provider asked for: ONNX Runtime falls back to the CPU silently
    when a GPU provider fails to load (missing CUDA or cuDNN libraries, a driver mismatch)."""
    first = requested[0] if isinstance(requested[0], str) else requested[0][0]
    if first not in loaded:
        raise BackendUnavailable(
            f"ONNX Runtime did not load {first} (the session runs on {', '.join(loaded) or 'nothing'}): its "
            "libraries (CUDA, cuDNN, TensorRT) are missing or do not match this driver; check "
            "'python -c \"import onnxruntime; onnxruntime.preload_dlls()\"' or pass --device cpu."
        )


def open_session(
    path: Path,
    mode: str,
    threads: int | None = None,
    device: str = "cpu",
    profile_prefix: str | None = None,
    provider: str | None = None,
    cuda_stream: int | None = None,
    provider_options: dict[str, Any] | None = None,
):
    """An optimized InferenceSession on the provider asked for (checked: no silent CPU fallback),
    or a one-sentence error for a missing or corrupt file; ``profile_prefix``: the same session
    with ONNX Runtime's per-node profiling on."""
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
    providers = providers_for(device, provider, cuda_stream, provider_options)
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except QBenchError:
        raise
    except Exception as exc:  # onnxruntime raises InvalidProtobuf, Fail, InvalidGraph, ...
        raise corrupt_artifact(path, mode, exc, what="ONNX model") from None
    check_providers(providers, session.get_providers())
    return session


# provider options that name a folder: recorded relative to the variant's folder, so it can move
CACHE_OPTIONS = ("trt_engine_cache_path", "trt_timing_cache_path")


def recorded_provider_options(variant: VariantRecord, variant_dir: Path) -> dict[str, str]:
    """The GPU provider options the variant was converted with, cache folders made absolute."""
    options = dict(variant.details.get("provider_options") or {})
    for key in CACHE_OPTIONS:
        if key in options:
            options[key] = str(Path(variant_dir) / options[key])
    return options


def load(path: Path, variant: VariantRecord, *, device: str = "cpu", threads: int | None = None):
    gpu_options = recorded_provider_options(variant, Path(path).parent) if device.startswith("cuda") else None
    return open_session(
        path,
        variant.mode,
        threads=threads,
        device=device,
        provider=variant.details.get("provider"),
        provider_options=gpu_options,
    )


FORMAT = register_format(
    "onnx", save=save, load=load, description="ONNX model (weights inside), run with ONNX Runtime"
)
