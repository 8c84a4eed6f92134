"""Dataset classes that torchvision does not provide: in-memory images and annotation-labelled files."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset


class TensorImages(Dataset):
    """Images held as a uint8/float tensor N x C x h x w, transformed per item."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), int(self.labels[i])


class LabelledFiles(Dataset):
    """Image files with labels from an annotation list (TinyImageNet's val/val_annotations.txt)."""

    def __init__(self, samples: list[tuple[Path, int]], transform) -> None:
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        from qbench.data.imagecheck import load_image

        path, label = self.samples[i]
        return self.transform(load_image(str(path))), label
