"""``ao-eager-int8``: a torch.ao.quantization eager-mode INT8 model, saved as its state dict.

The module structure of a converted eager model (QuantWrapper, fused Conv+ReLU, quantized
modules) is defined by the preparation recipe below, so the loader rebuilds it from the
architecture with the same recipe and then loads the saved int8 state. int8-ptq and qat
prepare with it too.

Loading must be cheap (it is paid in every measuring process): the structure is built by
:func:`quantized_skeleton` from a model on the ``meta`` device, with no random initialisation,
no calibration pass and no quantization of throw-away weights; the only real work left is the
one weight prepacking ``load_state_dict`` does for the saved int8 weights (AlexNet: about 0.5 s
of the former ~2 s). The artifact stays what is loaded: the int8 state dict, nothing more.
Architectures holding a quantizable module the skeleton does not know fall back to the slow
path (convert an uncalibrated copy), which is what torch.ao itself would build.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
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


class SkeletonUnsupported(Exception):
    """The model holds a quantizable module :func:`quantized_skeleton` cannot build without calibrating."""


def _skeleton_builders(runnable: bool) -> dict[type, Callable[[nn.Module], nn.Module]]:
    """float (fused) module type -> its quantized counterpart built from the geometry alone.

    Each constructor allocates the quantized weights uninitialised; ``load_state_dict`` fills them.
    Unless ``runnable``, Linear weights are allocated 1 x 1 (the module cannot run before loading).
    The pairs are torch.ao's default static mapping (``get_default_static_quant_module_mappings``)
    for the modules qbench's eager-mode architectures contain."""
    import torch.ao.nn.intrinsic as nni
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq
    from torch.ao import quantization as tq

    def conv(qcls):
        def build(mod):
            c = mod[0] if isinstance(mod, nn.Sequential) else mod  # fused: (conv, relu)
            return qcls(
                c.in_channels,
                c.out_channels,
                c.kernel_size,
                c.stride,
                c.padding,
                c.dilation,
                c.groups,
                c.bias is not None,
                c.padding_mode,
            )

        return build

    def linear(qcls):
        def build(mod):
            lin = mod[0] if isinstance(mod, nn.Sequential) else mod  # fused: (linear, relu)
            if not runnable:
                # prepacking an empty (out x in) weight costs as much as prepacking the real one
                # (AlexNet: 0.44 s); load_state_dict replaces the packed weight whatever its shape
                q = qcls(1, 1, lin.bias is not None)
                q.in_features, q.out_features = lin.in_features, lin.out_features
                return q
            return qcls(lin.in_features, lin.out_features, lin.bias is not None)

        return build

    # the activation dtype of the preparation recipe (PTQ and QAT quantize activations alike)
    activation_dtype = eager_qconfig("minmax", qat=False, reduce_range=False).activation().dtype
    return {
        tq.QuantStub: lambda mod: nnq.Quantize(1.0, 0, activation_dtype),
        tq.DeQuantStub: lambda mod: nnq.DeQuantize(),
        nn.Dropout: lambda mod: nnq.Dropout(mod.p, mod.inplace),
        nn.Conv1d: conv(nnq.Conv1d),
        nn.Conv2d: conv(nnq.Conv2d),
        nn.Conv3d: conv(nnq.Conv3d),
        nni.ConvReLU1d: conv(nniq.ConvReLU1d),
        nni.ConvReLU2d: conv(nniq.ConvReLU2d),
        nni.ConvReLU3d: conv(nniq.ConvReLU3d),
        nn.Linear: linear(nnq.Linear),
        nn.modules.linear.NonDynamicallyQuantizableLinear: linear(nnq.Linear),
        nni.LinearReLU: linear(nniq.LinearReLU),
    }


def quantized_skeleton(model: nn.Module, runnable: bool = False) -> nn.Module:
    """What ``eager_convert(eager_prepare(model))`` builds, without calibrating or quantizing.

    ``model`` may (and for speed should) live on the ``meta`` device: only its module tree and
    layer geometry are read. The result holds uninitialised int8 weights and default scales
    until a state dict saved from a real conversion is loaded into it; ``runnable`` gives every
    layer its full-size weights so the skeleton can run a forward pass as it is. Raises
    SkeletonUnsupported when a module torch.ao would swap has no builder here, or a tensor of the
    float model would survive into the quantized one."""
    from torch.ao import quantization as tq
    from torch.ao.quantization.quantization_mappings import get_default_static_quant_module_mappings

    torch.backends.quantized.engine = QUANTIZED_ENGINE
    builders = _skeleton_builders(runnable)
    swapped_by_torch = set(get_default_static_quant_module_mappings())
    wrapped = tq.QuantWrapper(model).eval()
    groups = fuse_groups(wrapped.module, prefix="module.")
    with quiet():
        if groups:
            tq.fuse_modules(wrapped, groups, inplace=True)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            kind = type(child)
            if kind in builders:
                setattr(parent, name, builders[kind](child))
            elif kind in swapped_by_torch:
                raise SkeletonUnsupported(f"no skeleton builder for {kind.__name__}")
            else:
                swap(child)

    with quiet():
        swap(wrapped)
    if any(t.is_meta for t in [*wrapped.parameters(), *wrapped.buffers()]):
        raise SkeletonUnsupported("a float tensor would survive into the quantized model")
    return wrapped.eval()


def _calibrated_skeleton(model: nn.Module, input_size: int) -> nn.Module:
    """The slow, always-correct structure: convert the model after one observer pass."""
    with quiet():
        prepared = eager_prepare(model, "minmax")
        prepared(torch.zeros(1, 3, input_size, input_size))
        return eager_convert(prepared)


def skeleton_for(architecture: str, num_classes: int, input_size: int, runnable: bool = False) -> nn.Module:
    """The quantized module structure of a registered architecture (fast path when it applies)."""
    from qbench.baselines.models import create_model

    try:
        with torch.device("meta"):
            float_model = create_model(architecture, num_classes=num_classes).eval()
        return quantized_skeleton(float_model, runnable)
    except SkeletonUnsupported:
        float_model = create_model(architecture, num_classes=num_classes).eval()
        return _calibrated_skeleton(float_model, input_size)


def load(path: Path, variant: VariantRecord, *, device: str = "cpu", threads: int | None = None) -> nn.Module:
    """Build the quantized structure from the architecture, then load the saved int8 state."""
    state = read_state_dict(path, variant.mode)
    base = variant.baseline
    model = skeleton_for(base.model, base.num_classes, base.input_size)
    torch.backends.quantized.engine = QUANTIZED_ENGINE
    return load_state_into(model, state, path, variant.mode)


FORMAT = register_format(
    "ao-eager-int8",
    save=save_state_dict,
    load=load,
    description="torch.ao eager INT8 state dict (QuantWrapper, fused, x86 engine)",
)
