"""Dataset registry.

A dataset builder takes a :class:`~qbench.records.DataConfig` (re-exported here) and returns
:class:`DataSplits`: train (augmented), train_eval (the same images with test-time transforms,
used for calibration), val and test. Nothing is downloaded unless ``DataConfig.download`` is set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qbench.errors import QBenchError
from qbench.records.config import DataConfig
from qbench.registry import Registry

if TYPE_CHECKING:  # torch is imported where data is built, not when the registry is listed
    import torch
    from torch.utils.data import Dataset, Subset


@dataclass
class DataSplits:
    name: str
    train: Dataset
    train_eval: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    class_names: list[str]
    input_size: int
    info: dict = field(default_factory=dict)
    # the ten-crop test transform (reference 001), for eval_split(..., "ten")
    ten_crop: Callable | None = None
    eval_crops: str = "center"  # the default of eval_split: DataConfig.eval_crops
    # unreadable image files left out (DataConfig.skip_bad_images); their paths are in info
    skipped_images: int = 0

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def eval_split(self, name: str, crops: str | None = None) -> Dataset:
        """Split ``name`` (train, val or test) with test-time transforms, seen as one centre
        view or as ten crops (``crops``; default: the data config's ``eval_crops``). The bench
        harness measures accuracy on ``eval_split("test")``; ``qbench.data.views`` runs it."""
        from qbench.data.views import with_transform

        split = {"train": self.train_eval, "val": self.val, "test": self.test}[name]
        crops = crops or self.eval_crops
        if crops == "center":
            return split
        if self.ten_crop is None:
            raise QBenchError(f"dataset {self.name!r} has no ten-crop view; use --eval-crops center.")
        return with_transform(split, self.ten_crop)

    def calibration_set(self, images: int, seed: int) -> Subset:
        """A fixed random subset of the training split with test-time transforms."""
        import torch
        from torch.utils.data import Subset

        if images <= 0:
            raise QBenchError("the calibration set is empty; pass --calib-batches 1 or more.")
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self.train_eval), generator=gen)[:images].tolist()
        return Subset(self.train_eval, order)


DATASETS: Registry[Callable[[DataConfig], DataSplits]] = Registry(
    "dataset", builtins=("qbench.data.builtin",), entry_point_group="qbench.datasets"
)
register_dataset = DATASETS.register


def load_data(config: DataConfig) -> DataSplits:
    splits = DATASETS.get(config.name)(config)
    splits.eval_crops = config.eval_crops
    return splits


def loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    workers: int = 0,
    seed: int = 0,
    sampler=None,
):
    import torch
    from torch.utils.data import DataLoader

    if len(dataset) == 0:
        raise QBenchError("a data split has no images; check the data folder or the split fractions.")
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=workers,
        generator=gen,
        persistent_workers=workers > 0,
    )


def tensor_hash(*tensors: torch.Tensor) -> str:
    """A short content hash (of calibration sets, test splits) for provenance records."""
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
