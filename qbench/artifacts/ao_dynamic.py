"""``ao-dynamic-int8``: torch.ao dynamic INT8 Linear layers, saved as the model's state dict."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from qbench.artifacts._torch import load_state_into, quiet, read_state_dict, save_state_dict
from qbench.artifacts.base import register_format
from qbench.records import VariantRecord


def quantize_linear_dynamic(model: nn.Module) -> nn.Module:
    """int8 weights on every Linear; activations quantized per batch at run time."""
    from torch.ao.quantization import quantize_dynamic

    torch.backends.quantized.engine = "x86"
    with quiet():
        return quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)


def load(path: Path, variant: VariantRecord, *, device: str = "cpu", threads: int | None = None) -> nn.Module:
    from qbench.baselines.models import create_model

    state = read_state_dict(path, variant.mode)
    base = variant.baseline
    model = quantize_linear_dynamic(create_model(base.model, num_classes=base.num_classes))
    return load_state_into(model, state, path, variant.mode)


FORMAT = register_format(
    "ao-dynamic-int8",
    save=save_state_dict,
    load=load,
    description="torch.ao dynamic INT8 Linear state dict",
)
