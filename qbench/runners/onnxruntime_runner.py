"""ONNX Runtime runner: one InferenceSession per variant (qbench.artifacts.onnx), thread counts
set and recorded."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from qbench.runners.base import Runner, register_runner


@register_runner("onnxruntime")
class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"

    def load(self) -> None:
        self.session = self.load_artifact()
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
