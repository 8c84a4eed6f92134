"""Named transform presets (reference documents 000, 001, 002 and 004).

Each preset maps to a pair (train transform, eval transform) that takes a PIL image or a
3xHxW float tensor and returns a normalized 3xSxS float tensor.
"""

from __future__ import annotations

from collections.abc import Callable

from qbench.errors import QBenchError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PRESETS = {
    "none": "resize and normalize only",
    "default": "light augmentation suited to the dataset (digits: small affine jitter)",
    "reference": "reference 000: RandomCrop, RandomHorizontalFlip, ColorJitter, RandomRotation, RandomAffine",
    "paper": "reference 001: resize to 1.14x, random crop, horizontal flip, mean subtraction",
    "imagenet": "reference 002: RandomResizedCrop, horizontal flip, ImageNet normalization",
    "random-crop": "reference 004: padded random crop",
    "pixel": "reference 004: colour jitter and Gaussian noise (sigma 0.05 on the 0..1 image)",
    "combined": "reference 004: random crop + pixel augmentation (jitter and noise) + flip",
}
# reference 004's "random noise injection": sigma on the 0..1 image, before normalization
NOISE_SIGMA = 0.05
# test-time views (reference 001): resize to size*256/224, then the four corners and the
# centre at ``size`` plus their horizontal mirrors; the prediction averages the 10 views
EVAL_CROPS = {"center": "one view: the preset's test-time transform", "ten": "TenCrop + flips, averaged"}


def presets() -> list[str]:
    return list(PRESETS)


def build(preset: str, size: int, from_tensor: bool = False, flips: bool = True):
    """Return (train_transform, eval_transform) for ``preset`` at ``size`` pixels."""
    from torchvision.transforms import v2 as T

    if preset not in PRESETS:
        raise QBenchError(
            f"unknown transform preset {preset!r}; pass --augment with one of: {', '.join(PRESETS)}."
        )
    to_tensor: list[Callable] = [] if from_tensor else [T.ToImage()]
    tail = _tail(preset)
    resize = [T.Resize((size, size), antialias=True)]
    flip = [T.RandomHorizontalFlip()] if flips else []
    aug: list[Callable]
    if preset == "none":
        aug = []
    elif preset == "default":
        aug = [T.RandomAffine(degrees=8, translate=(0.08, 0.08), scale=(0.92, 1.08)), *flip]
    elif preset == "reference":
        aug = [
            T.RandomCrop(size, padding=size // 16),
            *flip,
            T.ColorJitter(0.2, 0.2, 0.2),
            T.RandomRotation(10),
            T.RandomAffine(degrees=0, translate=(0.05, 0.05)),
        ]
    elif preset == "paper":
        big = round(size * 256 / 224)
        resize = [T.Resize((big, big), antialias=True)]
        aug = [T.RandomCrop(size), *flip]
        eval_t = T.Compose([*to_tensor, *resize, T.CenterCrop(size), *tail])
        return T.Compose([*to_tensor, *resize, *aug, *tail]), eval_t
    elif preset == "imagenet":
        resize = []
        aug = [T.RandomResizedCrop(size, antialias=True), *flip]
        eval_t = T.Compose(
            [*to_tensor, T.Resize(int(size * 256 / 224), antialias=True), T.CenterCrop(size), *tail]
        )
        return T.Compose([*to_tensor, *aug, *tail]), eval_t
    elif preset == "random-crop":
        aug = [T.RandomCrop(size, padding=size // 8)]
    elif preset == "pixel":
        aug = [T.ColorJitter(0.3, 0.3, 0.3)]
    else:  # combined
        aug = [T.RandomCrop(size, padding=size // 8), *flip, T.ColorJitter(0.3, 0.3, 0.3)]
    train_tail = tail
    if preset in ("pixel", "combined"):
        train_tail = [tail[0], T.GaussianNoise(sigma=NOISE_SIGMA, clip=True), *tail[1:]]
    train_t = T.Compose([*to_tensor, *resize, *aug, *train_tail])
    eval_t = T.Compose([*to_tensor, *resize, *tail])
    return train_t, eval_t


def _tail(preset: str) -> list[Callable]:
    """To float in 0..1, then normalize (the paper preset subtracts the mean only)."""
    import torch
    from torchvision.transforms import v2 as T

    norm_std = (1.0, 1.0, 1.0) if preset == "paper" else IMAGENET_STD  # reference 001
    return [T.ToDtype(torch.float32, scale=True), T.Normalize(IMAGENET_MEAN, norm_std)]


class StackViews:
    """Applies ``each`` to every view of a tuple of crops and stacks them: V x C x S x S."""

    def __init__(self, each: Callable) -> None:
        self.each = each

    def __call__(self, views):
        import torch

        return torch.stack([self.each(v) for v in views])


def build_ten_crop(preset: str, size: int, from_tensor: bool = False):
    """The ten-view test transform of ``preset`` (reference 001): 10 x 3 x size x size per image."""
    from torchvision.transforms import v2 as T

    if preset not in PRESETS:
        raise QBenchError(
            f"unknown transform preset {preset!r}; pass --augment with one of: {', '.join(PRESETS)}."
        )
    big = round(size * 256 / 224)
    to_tensor: list[Callable] = [] if from_tensor else [T.ToImage()]
    return T.Compose(
        [
            *to_tensor,
            T.Resize((big, big), antialias=True),
            T.TenCrop(size),
            StackViews(T.Compose(_tail(preset))),
        ]
    )
