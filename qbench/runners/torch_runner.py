"""PyTorch runner (eager, or torch.compile'd when the artifact format asks for it).

How an artifact becomes an ``nn.Module`` is its format's business (``qbench.artifacts``,
keyed by the variant's ``format``), so the runner never changes when a variant is added.
"""

from __future__ import annotations

from typing import Any

import torch

from qbench.artifacts import ARTIFACT_FORMATS
from qbench.artifacts._torch import DTYPES
from qbench.runners._profiling import RawProfile
from qbench.runners.base import Runner, register_runner


@register_runner("torch")
class TorchRunner(Runner):
    name = "torch"

    def load(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        self.dtype = DTYPES[self.variant.dtype or "float32"]
        self.compiled = bool(self.variant.format and ARTIFACT_FORMATS.get(self.variant.format).compiled)
        model = self.load_artifact()
        if hasattr(model, "eval"):
            model.eval()
        if hasattr(model, "to") and self.device != "cpu":
            model = model.to(self.device)
        if self.compiled:
            model = torch.compile(model)
        self.model = model

    def prepare(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.to(self.device, self.dtype).contiguous()

    def infer(self, native_input: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(native_input)

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def to_logits(self, output: torch.Tensor) -> torch.Tensor:
        return output.float().cpu()

    def close(self) -> None:
        self.model = None

    def profile(self, native_input: torch.Tensor, iterations: int) -> RawProfile:
        from qbench.runners._torch_profile import profile_module

        return profile_module(
            lambda: self.infer(native_input),
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
        }
