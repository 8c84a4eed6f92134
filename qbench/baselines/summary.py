"""Model summary: the layer table of reference 003 and the facts of reference 000.

FLOPs follow the convention of the reference report (thop's ``profile``): one
multiply-accumulate per weight use in Conv2d and Linear layers, plus thop's count for
adaptive average pooling (kernel adds + one division per output element). ReLU, max
pooling, dropout and LRN count as zero. For torchvision AlexNet with 2 classes at 224x224
this gives 710.119M, the figure printed in reference 000.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from qbench.records import LayerRow, ModelSummary

LAYER_TITLES = {
    nn.Conv2d: "2D Convolution",
    nn.ReLU: "ReLU",
    nn.LocalResponseNorm: "Local response norm",
    nn.MaxPool2d: "2D max pooling",
    nn.AdaptiveAvgPool2d: "Adaptive avg pooling",
    nn.AvgPool2d: "2D avg pooling",
    nn.Flatten: "Flatten",
    nn.Linear: "Linear",
    nn.Dropout: "Dropout",
    nn.BatchNorm2d: "Batch norm",
}


def _layer_flops(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        kernel = (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        return out.numel() // out.shape[0] * kernel
    if isinstance(module, nn.Linear):
        return out.numel() // out.shape[0] * module.in_features
    if isinstance(module, nn.AdaptiveAvgPool2d):
        kh = inp.shape[2] // out.shape[2]
        kw = inp.shape[3] // out.shape[3]
        return out.numel() // out.shape[0] * (kh * kw + 1)
    return 0


def probe_leaves(
    model: nn.Module, input_size: int, hook: Callable[..., None], select: Callable[[nn.Module], bool]
) -> None:
    """One 1-image forward pass in eval mode with ``hook`` on every selected leaf module; the
    hooks are removed and the model's training mode restored afterwards."""
    hooks = [
        mod.register_forward_hook(hook) for mod in model.modules() if not list(mod.children()) and select(mod)
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)


def summarize(model: nn.Module, input_size: int, name: str = "", num_classes: int = 0) -> ModelSummary:
    """Run one 1-image forward pass with hooks on every leaf module and tabulate it."""
    rows: list[LayerRow] = []

    def hook(mod: nn.Module, args: tuple, out: torch.Tensor) -> None:
        own = sum(p.numel() for p in mod.parameters(recurse=False))
        rows.append(
            LayerRow(
                name=names[mod],
                type=LAYER_TITLES.get(type(mod), type(mod).__name__),
                output_shape=[-1, *out.shape[1:]],
                params=own,
                flops=_layer_flops(mod, args[0], out),
            )
        )

    names = {mod: mod_name for mod_name, mod in model.named_modules() if not list(mod.children())}
    probe_leaves(model, input_size, hook, lambda mod: mod in names)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    size = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    return ModelSummary(
        model=name or type(model).__name__,
        input_size=input_size,
        num_classes=num_classes,
        total_params=total,
        trainable_params=trainable,
        flops=sum(r.flops for r in rows),
        size_bytes=size,
        layers=rows,
    )


def format_table(summary: ModelSummary) -> str:
    """The layer table as plain text, in the column order of reference 003."""
    header = f"{'Layer (type)':<28}{'Output Shape':<22}{'Param #':>14}"
    lines = [header, "-" * len(header)]
    for row in summary.layers:
        shape = "[" + ", ".join(str(d) for d in row.output_shape) + "]"
        lines.append(f"{row.type:<28}{shape:<22}{row.params:>14,}")
    lines += [
        "-" * len(header),
        f"Total params: {summary.total_params:,}",
        f"Trainable params: {summary.trainable_params:,}",
        f"Non-trainable params: {summary.non_trainable_params:,}",
        f"FLOPs per forward pass: {summary.flops / 1e6:.3f}M",
        f"Model size: {summary.size_mb:.2f} MB",
    ]
    return "\n".join(lines)
