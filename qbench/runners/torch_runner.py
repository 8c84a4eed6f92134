"""PyTorch runner (eager, or torch.compile'd when the variant asks for it).

How an artifact becomes an ``nn.Module`` depends on its ``format`` in variant.json; each
format registers a loader here (exporters register theirs next to the code that writes
them), so the runner itself never changes when a variant is added.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qbench.registry import Registry
from qbench.runners.base import Runner, register_runner

TorchLoader = Callable[[Path, dict[str, Any]], nn.Module]
TORCH_LOADERS: Registry[TorchLoader] = Registry("torch artifact format")
register_torch_loader = TORCH_LOADERS.register

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@register_torch_loader("checkpoint")
def load_checkpoint_artifact(path: Path, variant: dict[str, Any]) -> nn.Module:
    """A qbench FP32 checkpoint, cast to the variant's dtype (fp32, fp16, bf16)."""
    from qbench.baselines.checkpoint import load_checkpoint

    model, _ = load_checkpoint(path)
    return model.to(DTYPES[variant.get("dtype", "float32")])


@register_runner("torch")
class TorchRunner(Runner):
    name = "torch"

    def load(self) -> None:
        import qbench.exporters.builtin  # noqa: F401  (exporters register their loaders)

        if self.threads:
            torch.set_num_threads(self.threads)
        self.dtype = DTYPES[self.variant.get("dtype", "float32")]
        model = TORCH_LOADERS.get(self.variant.get("format", "checkpoint"))(self.artifact, self.variant)
        if hasattr(model, "eval"):
            model.eval()
        if hasattr(model, "to") and self.device != "cpu":
            model = model.to(self.device)
        if self.variant.get("compile"):
            model = torch.compile(model, **self.variant.get("compile_options", {}))
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

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "torch_threads": torch.get_num_threads(),
            "dtype": str(self.dtype).removeprefix("torch."),
            "compiled": bool(self.variant.get("compile")),
            "quantized_engine": torch.backends.quantized.engine,
        }
