"""Dataset classes that torchvision does not provide: in-memory images and annotation-labelled files."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

# a split's images resized by its transform's leading Resize are kept up to this size in all
RESIZE_CACHE_MAX_BYTES = 256 * 2**20


class TensorImages(Dataset):
    """Images held as a uint8/float tensor N x C x h x w, transformed per item.

    A transform that starts with a fixed-size Resize (torchvision v2) has that step applied once
    per image and kept, while the resized split fits RESIZE_CACHE_MAX_BYTES: the Resize draws
    no random numbers and gives the same tensor every time, so each item (and each augmentation
    drawn after it) is what the whole transform gives, without resizing again. On the digits set
    (8 -> 64 pixels) the resize was two thirds of a training item's transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images, self.labels = images, labels
        self._resized: dict[tuple, dict[int, torch.Tensor]] = {}  # per Resize: item -> resized image
        self.transform = transform

    @property
    def transform(self):
        return self._transform

    @transform.setter
    def transform(self, transform) -> None:  # also set by qbench.data.views.with_transform
        self._transform = transform
        self._resize, self._rest = _leading_resize(transform, self.images)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        if self._resize is None:
            return self.transform(self.images[i]), int(self.labels[i])
        done = self._resized.setdefault(_resize_key(self._resize), {})
        if i not in done:
            done[i] = self._resize(self.images[i])
        # a copy: no later step can change the kept image in place
        return self._rest(done[i].clone()), int(self.labels[i])


def _resize_key(resize) -> tuple:
    return (tuple(resize.size), resize.interpolation, resize.max_size, resize.antialias)


def _leading_resize(transform, images: torch.Tensor):
    """(the leading fixed-size Resize, the rest of the transform), or (None, transform) when the
    transform does not start with one or the resized images would not fit the cache."""
    from torchvision.transforms import v2

    steps = getattr(transform, "transforms", None) if isinstance(transform, v2.Compose) else None
    if not steps or not isinstance(steps[0], v2.Resize) or steps[0].size is None or len(steps[0].size) != 2:
        return None, transform
    height, width = steps[0].size
    if images.ndim != 4 or images.shape[0] * images.shape[1] * height * width * images.element_size() > (
        RESIZE_CACHE_MAX_BYTES
    ):
        return None, transform
    return steps[0], v2.Compose(steps[1:])


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
