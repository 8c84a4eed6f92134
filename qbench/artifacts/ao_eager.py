"""``ao-eager-int8``: a torch.ao.quantization eager-mode INT8 model, saved as its state dict.

The module structure of a converted eager model (QuantWrapper, fused Conv+ReLU, quantized
modules) is defined by the preparation recipe below, so the loader rebuilds it from the
architecture with the same recipe and then loads the saved int8 state. int8-ptq and qat
prepare with it too.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from qbench.artifacts._torch import load_state_into, quiet, read_state_dict, save_state_dict
from qbench.artifacts.base import register_format
from qbench.capabilities import cpu_has_vnni
from qbench.records import VariantRecord

QUANTIZED_ENGINE = "x86"
# qbench's calibration method -> the torch.ao observer standing in for it
OBSERVERS = {
    "minmax": "MinMaxObserver",
    "histogram": "HistogramObserver",
    "percentile": "HistogramObserver",
    "entropy": "HistogramObserver",
}


def fuse_groups(model: nn.Module, prefix: str = "") -> list[list[str]]:
    """Conv(+BN)+ReLU and Linear+ReLU runs inside Sequentials, the patterns eager mode fuses."""
    groups: list[list[str]] = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        i = 0
        while i < len(children):
            run = [children[i]]
            if isinstance(children[i][1], nn.Conv2d):
                j = i + 1
                if j < len(children) and isinstance(children[j][1], nn.BatchNorm2d):
                    run.append(children[j])
                    j += 1
                if j < len(children) and isinstance(children[j][1], nn.ReLU):
                    run.append(children[j])
            elif (
                isinstance(children[i][1], nn.Linear)
                and i + 1 < len(children)
                and isinstance(children[i + 1][1], nn.ReLU)
            ):
                run.append(children[i + 1])
            if len(run) > 1:
                base = f"{prefix}{name}." if name else prefix
                groups.append([f"{base}{child}" for child, _ in run])
            i += len(run)
    return groups


def eager_qconfig(method: str, qat: bool, reduce_range: bool):
    from torch.ao import quantization as tq

    if qat:
        return tq.get_default_qat_qconfig(QUANTIZED_ENGINE)
    observer = getattr(tq, OBSERVERS[method])
    return tq.QConfig(
        activation=observer.with_args(reduce_range=reduce_range),
        weight=tq.default_per_channel_weight_observer,
    )


def eager_prepare(model: nn.Module, method: str = "minmax", qat: bool = False) -> nn.Module:
    """Wrap in Quant/DeQuant stubs, fuse, attach observers (or fake-quant modules for QAT)."""
    from torch.ao import quantization as tq

    torch.backends.quantized.engine = QUANTIZED_ENGINE
    wrapped = tq.QuantWrapper(copy.deepcopy(model))
    groups = fuse_groups(wrapped.module, prefix="module.")
    with quiet():
        if qat:
            wrapped.train()
            if groups:
                tq.fuse_modules_qat(wrapped, groups, inplace=True)
        else:
            wrapped.eval()
            if groups:
                tq.fuse_modules(wrapped, groups, inplace=True)
        wrapped.qconfig = eager_qconfig(method, qat, reduce_range=not cpu_has_vnni())
        (tq.prepare_qat if qat else tq.prepare)(wrapped, inplace=True)
    return wrapped


def eager_convert(prepared: nn.Module) -> nn.Module:
    from torch.ao import quantization as tq

    with quiet():
        return tq.convert(prepared.eval(), inplace=False)


def load(path: Path, variant: VariantRecord, *, device: str = "cpu", threads: int | None = None) -> nn.Module:
    """Rebuild the architecture, convert it uncalibrated, then load the saved int8 state."""
    from qbench.baselines.models import create_model

    state = read_state_dict(path, variant.mode)
    base = variant.baseline
    skeleton = create_model(base.model, num_classes=base.num_classes).eval()
    with quiet():
        prepared = eager_prepare(skeleton, "minmax")
        prepared(torch.zeros(1, 3, base.input_size, base.input_size))
        model = eager_convert(prepared)
    torch.backends.quantized.engine = QUANTIZED_ENGINE
    return load_state_into(model, state, path, variant.mode)


FORMAT = register_format(
    "ao-eager-int8",
    save=save_state_dict,
    load=load,
    description="torch.ao eager INT8 state dict (QuantWrapper, fused, x86 engine)",
)
