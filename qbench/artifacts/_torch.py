"""What the PyTorch formats share: quiet torch.ao imports, state-dict files, dtype names."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import torch
from torch import nn

from qbench.artifacts.base import corrupt_artifact, require_artifact
from qbench.records.io import atomic_path

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@contextlib.contextmanager
def quiet():
    """Silence the upstream deprecation chatter of torch.ao eager mode (qbench feature-detects it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao.*")
        warnings.filterwarnings("ignore", message=".*(deprecat|migrat|quantize_per_channel).*")
        yield


def save_state_dict(path: Path, model: nn.Module) -> Path:
    with atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)
    return Path(path)


def read_state_dict(path: Path, mode: str) -> dict[str, torch.Tensor]:
    """The saved state dict (weights_only: a file never runs code); a bad file names the fix."""
    require_artifact(path, mode)
    try:
        with quiet():
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise corrupt_artifact(path, mode, exc) from None


def load_state_into(
    model: nn.Module, state: dict[str, torch.Tensor], path: Path, mode: str, assign: bool = False
) -> nn.Module:
    try:
        model.load_state_dict(state, assign=assign)
    except (RuntimeError, KeyError) as exc:
        raise corrupt_artifact(path, mode, exc) from None
    return model.eval()
