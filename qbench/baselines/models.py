"""Model registry (timm-style ``create_model``).

Each entry records the input resolution it was designed for; every model takes
``num_classes`` and works with any input at least as large as its smallest resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from qbench.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: type[nn.Module]
    default_input_size: int
    description: str


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(name: str, default_input_size: int, description: str):
    def decorator(cls: type[nn.Module]) -> type[nn.Module]:
        MODELS.register(name)(ModelSpec(name, cls, default_input_size, description))
        return cls

    return decorator


def create_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    return MODELS.get(name).builder(num_classes=num_classes, **kwargs)


@register_model("alexnet", 224, "torchvision AlexNet layout (64-192-384-256-256), adaptive pooling")
class AlexNet(nn.Module):
    """torchvision's AlexNet: the same module names, so its checkpoints load as they are."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


@register_model("alexnet-paper", 227, "Krizhevsky et al. 2012: 96-256-384-384-256 convs, LRN")
class AlexNetPaper(nn.Module):
    """The paper's single-tower AlexNet: LRN after conv1/conv2, overlapping 3x3/2 pooling."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model("resnet18", 224, "torchvision ResNet-18, the comparison model of the CIFAR-10 study")
class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        from torchvision.models import resnet18

        self.net = resnet18(weights=None, num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_model("tiny-cnn", 32, "a 2-conv test model (seconds to train, for tests and smoke runs)")
class TinyCNN(nn.Module):
    """AlexNet in miniature (conv-relu-pool features, linear classifier) for fast tests."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((4, 4))
        self.classifier = nn.Sequential(
            nn.Linear(16 * 4 * 4, 64),
            nn.ReLU(inplace=True),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def head_parameter_names(model: nn.Module) -> set[str]:
    """Parameters trained at the head learning rate: the ``classifier`` block, as in the
    reference recipe, or the last Linear layer for models without one (ResNet's ``fc``)."""
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
