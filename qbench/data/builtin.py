"""The built-in datasets.

``digits`` is the embedded default: scikit-learn ships its 1,797 8x8 handwritten-digit
scans, so it needs no download. Folder datasets read a local tree; torchvision's
downloaders run only with ``--download``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from qbench.data import transforms
from qbench.data.registry import DataConfig, DataSplits, register_dataset
from qbench.errors import QBenchError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif"}


class TensorImages(Dataset):
    """Images held as a uint8/float tensor N x C x h x w, transformed per item."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), int(self.labels[i])


def _stratified_split(labels, config: DataConfig):
    from sklearn.model_selection import train_test_split

    idx = list(range(len(labels)))
    rest, test = train_test_split(
        idx, test_size=config.test_fraction, stratify=labels, random_state=config.seed
    )
    val_share = config.val_fraction / (1 - config.test_fraction)
    train, val = train_test_split(
        rest, test_size=val_share, stratify=[labels[i] for i in rest], random_state=config.seed
    )
    return train, val, test


@register_dataset("digits", description="scikit-learn's bundled 8x8 digit scans, upsampled (offline)")
def digits(config: DataConfig) -> DataSplits:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).div_(16.0)  # 0..16 -> 0..1
    images = images.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    labels = torch.tensor(bunch.target, dtype=torch.long)
    train_t, eval_t = transforms.build(config.augment, config.image_size, from_tensor=True, flips=False)
    train_idx, val_idx, test_idx = _stratified_split(labels.tolist(), config)

    def part(idx, transform):
        return TensorImages(images[idx], labels[idx], transform)

    return DataSplits(
        name="digits",
        train=part(train_idx, train_t),
        train_eval=part(train_idx, eval_t),
        val=part(val_idx, eval_t),
        test=part(test_idx, eval_t),
        num_classes=10,
        class_names=[str(d) for d in range(10)],
        input_size=config.image_size,
        info={"source": "sklearn.datasets.load_digits", "original_size": 8, "seed": config.seed},
    )


def _require_root(config: DataConfig) -> Path:
    if config.root is None:
        raise QBenchError(f"dataset {config.name!r} reads a local folder; pass --data-root DIR.")
    root = Path(config.root)
    if not root.is_dir():
        raise QBenchError(f"data folder {root} does not exist; pass --data-root with an existing folder.")
    return root


def _image_folder(path: Path, transform):
    from torchvision.datasets import ImageFolder

    try:
        return ImageFolder(str(path), transform=transform, is_valid_file=_is_image)
    except (FileNotFoundError, RuntimeError) as exc:
        raise QBenchError(
            f"no images found under {path} ({exc}); put one sub-folder of images per class there."
        ) from None


def _is_image(path: str) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _folder_splits(config: DataConfig, name: str, preset_default: str) -> DataSplits:
    root = _require_root(config)
    preset = preset_default if config.augment == "default" else config.augment
    train_t, eval_t = transforms.build(preset, config.image_size)
    train_dir = root / "train"
    held_out = [d for d in ("val", "test") if (root / d).is_dir()]
    if not train_dir.is_dir() or not held_out:
        raise QBenchError(
            f"{root} needs a train/ folder and a val/ or test/ folder, each with one sub-folder per class."
        )
    train = _image_folder(train_dir, train_t)
    train_eval = _image_folder(train_dir, eval_t)
    val = _image_folder(root / held_out[0], eval_t)
    test = _image_folder(root / held_out[-1], eval_t)
    for split in (val, test):
        if split.classes != train.classes:
            raise QBenchError(
                f"the class folders of {root / held_out[0]} differ from those of {train_dir}; "
                "use the same class names in every split."
            )
    if len(held_out) == 1:
        # only one held-out folder: split it in halves for validation and test, stratified
        labels = [y for _, y in val.samples]
        half = DataConfig(**{**config.__dict__, "test_fraction": 0.499, "val_fraction": 0.001})
        _, v_idx, t_idx = _stratified_split_safe(labels, half)
        val, test = Subset(val, v_idx), Subset(test, t_idx)
    return DataSplits(
        name=name,
        train=train,
        train_eval=train_eval,
        val=val,
        test=test,
        num_classes=len(train.classes),
        class_names=list(train.classes),
        input_size=config.image_size,
        info={"root": str(root), "held_out": held_out, "augment": preset},
    )


def _stratified_split_safe(labels, config):
    """Halve a held-out folder into validation and test, stratified where class sizes allow."""
    from sklearn.model_selection import train_test_split

    idx = list(range(len(labels)))
    try:
        v, t = train_test_split(idx, test_size=0.5, stratify=labels, random_state=config.seed)
    except ValueError:
        v, t = train_test_split(idx, test_size=0.5, random_state=config.seed)
    return [], v, t


@register_dataset("imagefolder", description="DIR/train/<class>/*.png and DIR/val|test/<class>/*.png")
def imagefolder(config: DataConfig) -> DataSplits:
    return _folder_splits(config, "imagefolder", "reference")


@register_dataset("imagenet", description="ImageNet layout: DIR/train/<wnid>/ and DIR/val/<wnid>/")
def imagenet(config: DataConfig) -> DataSplits:
    return _folder_splits(config, "imagenet", "imagenet")


def _torchvision_splits(config: DataConfig, name: str, cls_name: str, gray: bool) -> DataSplits:
    import torchvision.datasets as tvd
    from torchvision.transforms import v2 as T

    root = Path(config.root or Path.home() / ".cache" / "qbench" / name)
    preset = "paper" if config.augment == "default" and name == "cifar10" else config.augment
    preset = "none" if preset == "default" else preset
    train_t, eval_t = transforms.build(preset, config.image_size, flips=not gray)
    if gray:
        train_t = T.Compose([T.Grayscale(3), train_t])
        eval_t = T.Compose([T.Grayscale(3), eval_t])
    cls = getattr(tvd, cls_name)
    try:
        train = cls(str(root), train=True, transform=train_t, download=config.download)
        train_eval = cls(str(root), train=True, transform=eval_t, download=False)
        test = cls(str(root), train=False, transform=eval_t, download=config.download)
    except RuntimeError:
        raise QBenchError(
            f"{name} is not in {root}; pass --data-root with a folder holding it, or add --download."
        ) from None
    labels = list(map(int, train.targets))
    train_idx, val_idx, _ = _stratified_split(
        labels, DataConfig(**{**config.__dict__, "test_fraction": 0.01})
    )
    train_idx = train_idx + _  # the 1% carved for 'test' goes back to training: test is the official split
    return DataSplits(
        name=name,
        train=Subset(train, train_idx),
        train_eval=Subset(train_eval, train_idx),
        val=Subset(train_eval, val_idx),
        test=test,
        num_classes=len(train.classes),
        class_names=[str(c) for c in train.classes],
        input_size=config.image_size,
        info={"root": str(root), "augment": preset},
    )


@register_dataset("mnist", description="MNIST from a local folder (or --download), grayscale to 3 channels")
def mnist(config: DataConfig) -> DataSplits:
    return _torchvision_splits(config, "mnist", "MNIST", gray=True)


@register_dataset("cifar10", description="CIFAR-10 from a local folder (or --download)")
def cifar10(config: DataConfig) -> DataSplits:
    return _torchvision_splits(config, "cifar10", "CIFAR10", gray=False)
