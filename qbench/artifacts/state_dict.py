"""``state-dict``: the state dict of a model whose module structure is the baseline architecture's.

For conversions that change weights but not modules (e.g. torchao's ``quantize_``, which
swaps Linear weights for quantized tensor subclasses): the loader rebuilds the architecture
and assigns the saved tensors (``assign=True`` keeps their subclass). A new mode can use this
format without a loader of its own.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from torch import nn

from qbench.artifacts._torch import load_state_into, read_state_dict, save_state_dict
from qbench.artifacts.base import register_format
from qbench.records import VariantRecord


def load(path: Path, variant: VariantRecord, *, device: str = "cpu", threads: int | None = None) -> nn.Module:
    from qbench.baselines.models import create_model

    if importlib.util.find_spec("torchao") is not None:
        # torchao allow-lists its tensor subclasses for weights_only loading when imported
        import torchao.quantization  # noqa: F401
    state = read_state_dict(path, variant.mode)
    base = variant.baseline
    model = create_model(base.model, num_classes=base.num_classes).eval()
    return load_state_into(model, state, path, variant.mode, assign=True)


FORMAT = register_format(
    "state-dict",
    save=save_state_dict,
    load=load,
    description="state dict of the baseline architecture (tensor subclasses kept), e.g. torchao quantize_",
)
