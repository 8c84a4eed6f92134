"""The architectures (nn.Modules) behind the model registry in ``qbench.baselines.models``."""

from __future__ import annotations

import torch
from torch import nn


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


def resnet18(num_classes: int = 1000) -> nn.Module:
    """torchvision's ResNet-18 itself (not wrapped), so its checkpoints import unchanged."""
    from torchvision.models import resnet18 as torchvision_resnet18

    return torchvision_resnet18(weights=None, num_classes=num_classes)


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


class AlexNetVariant(nn.Module):
    """torchvision's AlexNet and the TinyImageNet study's variants (reference 004) built on it:
    optional BatchNorm after every convolution, and one of three heads: ``fc`` (the usual
    dropout 4096-4096-N classifier), ``small`` (9216-2000-N) or ``gap`` (global average
    pooling straight into a 256-N layer)."""

    def __init__(
        self, num_classes: int = 200, batch_norm: bool = True, head: str = "fc", dropout: float = 0.5
    ):
        super().__init__()
        layers: list[nn.Module] = []
        convs = [
            (3, 64, 11, 4, 2),
            (64, 192, 5, 1, 2),
            (192, 384, 3, 1, 1),
            (384, 256, 3, 1, 1),
            (256, 256, 3, 1, 1),
        ]
        for i, (cin, cout, k, s, p) in enumerate(convs):
            layers.append(nn.Conv2d(cin, cout, kernel_size=k, stride=s, padding=p))
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
            if i in (0, 1, 4):
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
        self.features = nn.Sequential(*layers)
        if head == "gap":
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.classifier = nn.Sequential(nn.Linear(256, num_classes))
        else:
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            hidden = [4096, 4096] if head == "fc" else [2000]
            blocks: list[nn.Module] = []
            width = 256 * 6 * 6
            for h in hidden:
                blocks += [nn.Dropout(p=dropout), nn.Linear(width, h), nn.ReLU(inplace=True)]
                width = h
            self.classifier = nn.Sequential(*blocks, nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class AlexNet(AlexNetVariant):
    """torchvision's AlexNet: the same module names and indices, so its checkpoints load as they are."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__(num_classes, batch_norm=False, head="fc", dropout=dropout)


class AlexNetPlain(AlexNetVariant):
    """Reference 004's baseline: torchvision's layout without dropout or batch norm."""

    def __init__(self, num_classes: int = 200) -> None:
        super().__init__(num_classes, batch_norm=False, head="fc", dropout=0.0)


class AlexNetBN(AlexNetVariant):
    """Reference 004's batch-norm model: BatchNorm after every convolution, no dropout."""

    def __init__(self, num_classes: int = 200) -> None:
        super().__init__(num_classes, batch_norm=True, head="fc", dropout=0.0)


class AlexNetCombinedLarge(AlexNetVariant):
    """Reference 004's combined-large model: BatchNorm and dropout (its transforms: ``combined``)."""

    def __init__(self, num_classes: int = 200) -> None:
        super().__init__(num_classes, batch_norm=True, head="fc", dropout=0.5)


class AlexNetSmall(AlexNetVariant):
    def __init__(self, num_classes: int = 200) -> None:
        super().__init__(num_classes, batch_norm=True, head="small")


class AlexNetGAP(AlexNetVariant):
    def __init__(self, num_classes: int = 200) -> None:
        super().__init__(num_classes, batch_norm=True, head="gap")


def paper_init(model: nn.Module) -> nn.Module:
    """The AlexNet paper's initialisation (section 5): weights from N(0, 0.01); biases 1 in the
    2nd, 4th and 5th convolutions and the hidden fully-connected layers, 0 elsewhere."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    ones = {id(m) for i, m in enumerate(convs, 1) if i in (2, 4, 5)} | {id(m) for m in linears[:-1]}
    with torch.no_grad():
        for module in (*convs, *linears):
            nn.init.normal_(module.weight, mean=0.0, std=0.01)
            if module.bias is not None:
                nn.init.constant_(module.bias, 1.0 if id(module) in ones else 0.0)
    return model
