"""ONNX Runtime runner: one InferenceSession per variant, thread counts set and recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from qbench.errors import BackendUnavailable, QBenchError
from qbench.runners.base import Runner, register_runner


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


def open_session(path: Path, mode: str, threads: int | None = None, device: str = "cpu"):
    """An optimized InferenceSession, or a one-sentence error for a missing or corrupt file."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise QBenchError(f"ONNX model {path} does not exist; rerun 'qbench quantize --mode {mode}'.")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or 0  # 0 = ORT's default (one per physical core)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: ORT's warnings would drown the progress display
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers_for(device))
    except QBenchError:
        raise
    except Exception as exc:  # onnxruntime raises InvalidProtobuf, Fail, InvalidGraph, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise QBenchError(
            f"ONNX model {path} cannot be loaded ({first}); it is corrupt or truncated: "
            f"rerun 'qbench quantize --mode {mode}'."
        ) from None


@register_runner("onnxruntime")
class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"

    def load(self) -> None:
        self.session = open_session(
            self.artifact, self.variant.get("mode", "onnx"), threads=self.threads, device=self.device
        )
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.output_name = self.session.get_outputs()[0].name
        self.input_dtype = np.float16 if model_input.type == "tensor(float16)" else np.float32

    def prepare(self, batch: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=self.input_dtype)

    def infer(self, native_input: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: native_input})[0]

    def to_logits(self, output: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(output, dtype=np.float32))

    def close(self) -> None:
        self.session = None

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        options = self.session.get_session_options() if self.session is not None else None
        return {
            **super().describe(),
            "providers": self.session.get_providers() if self.session is not None else None,
            "intra_op_num_threads": options.intra_op_num_threads if options else None,
            "inter_op_num_threads": options.inter_op_num_threads if options else None,
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "input_dtype": np.dtype(self.input_dtype).name,
            "onnxruntime": ort.__version__,
        }
