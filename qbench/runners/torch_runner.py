"""PyTorch runner (eager, or torch.compile'd when the artifact format asks for it).

How an artifact becomes an ``nn.Module`` is its format's business (``qbench.artifacts``,
keyed by the variant's ``format``), so the runner never changes when a variant is added.
"""

from __future__ import annotations

from typing import Any

import torch

from qbench.artifacts import ARTIFACT_FORMATS
from qbench.artifacts._torch import DTYPES
from qbench.runners._cuda_graph import CapturedCall, capture
from qbench.runners._profiling import RawProfile
from qbench.runners.base import Runner, register_runner


def apply_tf32(enabled: bool | None) -> dict[str, Any]:
    """Set TF32 tensor-core math for matmuls and cuDNN convolutions (``--tf32 on|off``; None keeps
    PyTorch's defaults, which differ: matmuls off, convolutions on) and return the effective
    settings: an "fp32" GPU latency is only comparable with them beside it."""
    if enabled is not None:
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled
    return {
        "matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_conv": bool(torch.backends.cudnn.allow_tf32),
        "requested": "default" if enabled is None else ("on" if enabled else "off"),
    }


@register_runner("torch")
class TorchRunner(Runner):
    name = "torch"
    supports_cuda_graph = True

    def load(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        self.dtype = DTYPES[self.variant.dtype or "float32"]
        self.compiled = bool(self.variant.format and ARTIFACT_FORMATS.get(self.variant.format).compiled)
        model = self.load_artifact()
        if hasattr(model, "eval"):
            model.eval()
        if self.cuda:
            self.tf32_settings = apply_tf32(self.tf32)
        if hasattr(model, "to") and self.device != "cpu":
            model = model.to(self.device)
        if self.compiled:
            model = torch.compile(model)
        self.model = model
        self.graphs: dict[tuple[int, ...], CapturedCall] = {}
        if self.cuda:
            torch.cuda.synchronize(self.device)  # weights copied on the default stream; ours reads them

    def prepare(self, batch: torch.Tensor) -> torch.Tensor | CapturedCall:
        x = batch.to(self.device, self.dtype).contiguous()
        if not self.cuda_graph:
            return x
        shape = tuple(x.shape)
        if shape not in self.graphs:
            self.graphs[shape] = capture(self._forward, x.clone(), self.stream)
        call = self.graphs[shape]
        call.input.copy_(x)
        return call

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(x)

    def infer(self, native_input: torch.Tensor | CapturedCall) -> torch.Tensor:
        if isinstance(native_input, CapturedCall):
            return native_input.replay()
        return self._forward(native_input)

    def to_logits(self, output: torch.Tensor) -> torch.Tensor:
        return output.float().cpu()

    def close(self) -> None:
        self.model = None
        self.graphs = {}

    def profile(self, native_input: torch.Tensor, iterations: int) -> RawProfile:
        from qbench.runners._torch_profile import profile_module

        # eager even under --cuda-graph: a replayed graph runs no module hooks, so no layer names
        x = native_input.input if isinstance(native_input, CapturedCall) else native_input
        return profile_module(
            lambda: self._forward(x),
            self.sync,
            self.model,
            iterations,
            compiled=self.compiled,
            cuda=self.device.startswith("cuda"),
        )

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "torch_threads": torch.get_num_threads(),
            "dtype": str(self.dtype).removeprefix("torch."),
            "compiled": self.compiled,
            "quantized_engine": torch.backends.quantized.engine,
            **({"tf32": self.tf32_settings} if self.cuda else {}),
        }
