"""``checkpoint``: a qbench FP32 checkpoint (baseline/model.pt's layout), loaded in the variant's dtype.

fp32 points at the baseline's own file; fp16 and bf16 save a cast copy in the same layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qbench.artifacts.base import register_format
from qbench.records import VariantRecord


def save(path: Path, model, meta: dict[str, Any]) -> Path:
    from qbench.baselines.checkpoint import save_checkpoint

    # the checkpoint layout's own keys are written by save_checkpoint, not copied from the source
    return save_checkpoint(
        path, model, {k: v for k, v in meta.items() if k not in ("format", "schema_version")}
    )


def load(path: Path, variant: VariantRecord, *, device: str = "cpu", threads: int | None = None):
    from qbench.artifacts._torch import DTYPES
    from qbench.baselines.checkpoint import load_checkpoint

    model, _ = load_checkpoint(path)
    return model.to(DTYPES[variant.dtype or "float32"])


FORMAT = register_format(
    "checkpoint", save=save, load=load, description="qbench checkpoint (torch.save of meta + state dict)"
)
