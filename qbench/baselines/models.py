"""Model registry (timm-style ``create_model``).

Each entry names its architecture class and the input resolution it was designed for; every
model takes ``num_classes``. The registry itself imports no torch: the class is imported when
a model is built, so ``qbench --help`` and the torch-free subcommands start quickly.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from qbench.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    name: str
    target: str  # "module:Class"
    default_input_size: int
    description: str
    # the transform preset the model is trained with when --augment is left at "default"
    augment: str | None = None

    @property
    def builder(self) -> Any:
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)


MODELS: Registry[ModelSpec] = Registry("model", entry_point_group="qbench.models")

_ARCH = "qbench.baselines.architectures"
for _spec in (
    ModelSpec(
        "alexnet",
        f"{_ARCH}:AlexNet",
        224,
        "torchvision AlexNet layout (64-192-384-256-256), adaptive pooling",
    ),
    ModelSpec(
        "alexnet-paper", f"{_ARCH}:AlexNetPaper", 227, "Krizhevsky et al. 2012: 96-256-384-384-256 convs, LRN"
    ),
    ModelSpec(
        "alexnet-plain",
        f"{_ARCH}:AlexNetPlain",
        64,
        "reference 004 baseline: torchvision layout without dropout",
    ),
    ModelSpec(
        "alexnet-dropout",
        f"{_ARCH}:AlexNet",
        64,
        "reference 004 dropout model: torchvision layout, dropout 0.5 in the FC blocks",
    ),
    ModelSpec(
        "alexnet-bn",
        f"{_ARCH}:AlexNetBN",
        64,
        "reference 004: AlexNet with BatchNorm after every convolution, no dropout",
    ),
    ModelSpec(
        "alexnet-combined-large",
        f"{_ARCH}:AlexNetCombinedLarge",
        64,
        "reference 004 combined-large: BatchNorm + dropout, combined transforms",
        augment="combined",
    ),
    ModelSpec(
        "alexnet-small",
        f"{_ARCH}:AlexNetSmall",
        64,
        "reference 004 combined-small: BatchNorm + dropout, 9216-2000-N head, combined transforms",
        augment="combined",
    ),
    ModelSpec(
        "alexnet-gap",
        f"{_ARCH}:AlexNetGAP",
        64,
        "reference 004 combined GAP: BatchNorm, global average pooling, 256-N head, combined transforms",
        augment="combined",
    ),
    ModelSpec(
        "resnet18",
        f"{_ARCH}:resnet18",
        224,
        "torchvision ResNet-18 (its own layout: torchvision weights import as they are), reference 001",
    ),
    ModelSpec(
        "tiny-cnn", f"{_ARCH}:TinyCNN", 32, "a 2-conv test model (seconds to train, for tests and smoke runs)"
    ),
):
    MODELS.register(_spec.name)(_spec)


def create_model(name: str, num_classes: int, **kwargs):
    return MODELS.get(name).builder(num_classes=num_classes, **kwargs)


def head_parameter_names(model) -> set[str]:
    """Parameters trained at the head learning rate: the ``classifier`` block, as in the
    reference recipe, or the last Linear layer for models without one (ResNet's ``fc``)."""
    from torch import nn

    names = [n for n, _ in model.named_parameters()]
    head = {n for n in names if n.startswith("classifier.") or ".classifier." in n}
    if head:
        return head
    last_linear = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last_linear = name
    if last_linear is None:
        return set()
    return {f"{last_linear}.{p}" for p, _ in model.get_submodule(last_linear).named_parameters()}
