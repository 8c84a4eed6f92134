"""The built-in datasets.

``digits`` is the embedded default: scikit-learn ships its 1,797 8x8 handwritten-digit
scans, so it needs no download. Folder datasets read a local tree; torchvision's
downloaders run only with ``--download``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from qbench.data import transforms
from qbench.data.imagecheck import MAX_LISTED, load_image, require_readable
from qbench.data.registry import DataSplits, register_dataset
from qbench.errors import QBenchError
from qbench.records.config import DataConfig

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif"}


def _split_off(idx: list[int], labels: list[int], share: float, seed: int) -> tuple[list[int], list[int]]:
    """Split ``idx`` into (rest, part) with ``share`` of it in part, stratified by label where
    every class has enough images for that, plainly random otherwise."""
    from sklearn.model_selection import train_test_split

    strata = [labels[i] for i in idx]
    try:
        return train_test_split(idx, test_size=share, stratify=strata, random_state=seed)
    except ValueError:  # a class with a single image cannot be stratified
        return train_test_split(idx, test_size=share, random_state=seed)


def _stratified_split(labels: list[int], config: DataConfig):
    """Fixed train/val/test indices from the seed (the test share first, then validation)."""
    rest, test = _split_off(list(range(len(labels))), labels, config.test_fraction, config.seed)
    train, val = _split_off(rest, labels, config.val_fraction / (1 - config.test_fraction), config.seed)
    return train, val, test


@register_dataset("digits", description="scikit-learn's bundled 8x8 digit scans, upsampled (offline)")
def digits(config: DataConfig) -> DataSplits:
    import torch
    from sklearn.datasets import load_digits

    from qbench.data.datasets import TensorImages

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
        ten_crop=transforms.build_ten_crop(config.augment, config.image_size, from_tensor=True),
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
        return ImageFolder(str(path), transform=transform, loader=load_image, is_valid_file=_is_image)
    except (FileNotFoundError, RuntimeError) as exc:
        raise QBenchError(
            f"no images found under {path} ({exc}); put one sub-folder of images per class there."
        ) from None
    except PermissionError as exc:
        raise QBenchError(f"cannot read {exc.filename or path} ({exc.strerror}); make it readable.") from None


def _check_images(config: DataConfig, root: Path, folders: list, files: list | None = None) -> list[str]:
    """Check every image of ``folders`` (ImageFolders) and ``files`` (a LabelledFiles) before any
    work: unreadable ones are an error naming them, or with ``config.skip_bad_images`` they are
    removed from those data sets. Returns the skipped paths."""
    paths = [p for f in folders for p, _ in f.samples] + [str(p) for p, _ in (files.samples if files else [])]
    bad = {str(b.path) for b in require_readable(paths, root, config.skip_bad_images)}
    if bad:
        for folder in folders:
            folder.samples = [s for s in folder.samples if s[0] not in bad]
            folder.imgs = folder.samples
            folder.targets = [y for _, y in folder.samples]
        if files is not None:
            files.samples = [s for s in files.samples if str(s[0]) not in bad]
    return sorted(bad)


def _skip_info(skipped: list[str]) -> dict:
    """What train.json's data_info says about left-out images (the paths capped)."""
    return {"skipped_images": skipped[:MAX_LISTED], "skipped_image_count": len(skipped)} if skipped else {}


def _is_image(path: str) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _folder_splits(config: DataConfig, name: str, preset_default: str) -> DataSplits:
    from torch.utils.data import Subset

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
    skipped = _check_images(config, root, [train, train_eval, val, test])
    if len(held_out) == 1:
        # only one held-out folder: halve it into validation and test
        labels = [y for _, y in val.samples]
        v_idx, t_idx = _split_off(list(range(len(labels))), labels, 0.5, config.seed)
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
        info={"root": str(root), "held_out": held_out, "augment": preset, **_skip_info(skipped)},
        ten_crop=transforms.build_ten_crop(preset, config.image_size),
        skipped_images=len(skipped),
    )


@register_dataset(
    "tinyimagenet", description="TinyImageNet layout: train/<wnid>/images/, val/val_annotations.txt"
)
def tinyimagenet(config: DataConfig) -> DataSplits:
    """TinyImageNet's own layout; its test images carry no labels, so val is halved into val and test."""
    from torch.utils.data import Subset

    from qbench.data.datasets import LabelledFiles

    root = _require_root(config)
    notes = root / "val" / "val_annotations.txt"
    if not (root / "train").is_dir() or not notes.is_file():
        raise QBenchError(
            f"{root} needs train/<wnid>/images/ and val/val_annotations.txt (the TinyImageNet layout)."
        )
    preset = "random-crop" if config.augment == "default" else config.augment
    train_t, eval_t = transforms.build(preset, config.image_size)
    train = _image_folder(root / "train", train_t)
    index = {wnid: i for i, wnid in enumerate(train.classes)}
    samples = []
    for line in notes.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[1] in index:
            samples.append((root / "val" / "images" / fields[0], index[fields[1]]))
    if not samples:
        raise QBenchError(f"{notes} names no image of a training class; check the TinyImageNet folder.")
    held_out = LabelledFiles(samples, eval_t)
    train_eval = _image_folder(root / "train", eval_t)
    skipped = _check_images(config, root, [train, train_eval], held_out)
    samples = held_out.samples
    v_idx, t_idx = _split_off(list(range(len(samples))), [y for _, y in samples], 0.5, config.seed)
    return DataSplits(
        name="tinyimagenet",
        train=train,
        train_eval=train_eval,
        val=Subset(held_out, v_idx),
        test=Subset(held_out, t_idx),
        num_classes=len(train.classes),
        class_names=list(train.classes),
        input_size=config.image_size,
        info={
            "root": str(root),
            "augment": preset,
            "test": "half of val/ (the official test split has no labels)",
            **_skip_info(skipped),
        },
        ten_crop=transforms.build_ten_crop(preset, config.image_size),
        skipped_images=len(skipped),
    )


@register_dataset("imagefolder", description="DIR/train/<class>/*.png and DIR/val|test/<class>/*.png")
def imagefolder(config: DataConfig) -> DataSplits:
    return _folder_splits(config, "imagefolder", "reference")


@register_dataset("imagenet", description="ImageNet layout: DIR/train/<wnid>/ and DIR/val/<wnid>/")
def imagenet(config: DataConfig) -> DataSplits:
    return _folder_splits(config, "imagenet", "imagenet")


def _open_torchvision(cls, name: str, root: Path, *, train: bool, transform, download: bool):
    """One split of a torchvision data set; a missing one is a QBenchError naming the fix."""
    try:
        return cls(str(root), train=train, transform=transform, download=download)
    except RuntimeError:
        raise QBenchError(
            f"{name} is not in {root}; pass --data-root with a folder holding it, or add --download."
        ) from None


def _torchvision_splits(config: DataConfig, name: str, cls_name: str, gray: bool) -> DataSplits:
    """MNIST or CIFAR-10: the official test split, validation taken out of the training set."""
    import torchvision.datasets as tvd
    from torch.utils.data import Subset
    from torchvision.transforms import v2 as T

    root = Path(config.root or Path.home() / ".cache" / "qbench" / name)
    preset = "paper" if config.augment == "default" and name == "cifar10" else config.augment
    preset = "none" if preset == "default" else preset
    train_t, eval_t = transforms.build(preset, config.image_size, flips=not gray)
    ten_t = transforms.build_ten_crop(preset, config.image_size)
    if gray:
        train_t, eval_t, ten_t = (T.Compose([T.Grayscale(3), t]) for t in (train_t, eval_t, ten_t))
    if name == "cifar10":
        from qbench.data.cifar import open_cifar10 as open_split
    else:
        open_split = functools.partial(_open_torchvision, getattr(tvd, cls_name), name)
    train = open_split(root, train=True, transform=train_t, download=config.download)
    train_eval = open_split(root, train=True, transform=eval_t, download=False)
    test = open_split(root, train=False, transform=eval_t, download=False)  # train fetched both
    info = {"root": str(root), "augment": preset}
    if name == "cifar10":
        info["files"] = (
            "the official CIFAR-10 batches (md5 checked)"
            if train.is_official()
            else "not the official CIFAR-10 batches (md5 differs): a subset or re-packed copy"
        )
    labels = list(map(int, train.targets))
    # the official test split stays the test split; validation comes out of the training set
    train_idx, val_idx = _split_off(list(range(len(labels))), labels, config.val_fraction, config.seed)
    return DataSplits(
        name=name,
        train=Subset(train, train_idx),
        train_eval=Subset(train_eval, train_idx),
        val=Subset(train_eval, val_idx),
        test=test,
        num_classes=len(train.classes),
        class_names=[str(c) for c in train.classes],
        input_size=config.image_size,
        info=info,
        ten_crop=ten_t,
    )


@register_dataset("mnist", description="MNIST from a local folder (or --download), grayscale to 3 channels")
def mnist(config: DataConfig) -> DataSplits:
    return _torchvision_splits(config, "mnist", "MNIST", gray=True)


@register_dataset("cifar10", description="CIFAR-10 from a local folder (or --download)")
def cifar10(config: DataConfig) -> DataSplits:
    return _torchvision_splits(config, "cifar10", "CIFAR10", gray=False)
