"""An in-memory image dataset (the embedded digits), transformed per item."""

from __future__ import annotations

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
