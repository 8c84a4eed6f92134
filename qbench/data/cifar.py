"""CIFAR-10 from its python-version layout (``cifar-10-batches-py/``), official or not.

torchvision's reader refuses any copy whose batch files differ from the official archive's
md5 sums, so a subset, a re-packed copy or a test fixture in the very same layout cannot be
read. This reader keeps torchvision's parsing and drops the md5 gate; whether the files are the
official ones is still checked and recorded in the data set's info. ``--download`` goes through
torchvision's checked download unchanged.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import check_integrity

from qbench.errors import QBenchError


class LocalCIFAR10(CIFAR10):
    """torchvision's CIFAR10 that reads any well-formed copy of the layout."""

    def _files(self) -> list[tuple[str, str]]:
        return [*self.train_list, *self.test_list, (self.meta["filename"], self.meta["md5"])]

    def _check_integrity(self) -> bool:
        folder = Path(self.root) / self.base_folder
        return all((folder / name).is_file() for name, _ in self._files())

    def _load_meta(self) -> None:
        with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as fh:
            self.classes = pickle.load(fh, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}

    def is_official(self) -> bool:
        """Every file carries the official archive's md5 (about 0.3 s for the full set)."""
        folder = Path(self.root) / self.base_folder
        return all(check_integrity(str(folder / name), md5) for name, md5 in self._files())


def open_cifar10(root: Path, *, train: bool, transform, download: bool) -> LocalCIFAR10:
    """One split; a missing folder or a damaged file is a QBenchError naming the fix."""
    try:
        return LocalCIFAR10(str(root), train=train, transform=transform, download=download)
    except RuntimeError:
        raise QBenchError(
            f"cifar10 is not in {root} (no {CIFAR10.base_folder}/ with data_batch_1..5, test_batch and "
            "batches.meta); pass --data-root with a folder holding it, or add --download."
        ) from None
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as exc:
        raise QBenchError(
            f"cifar10 in {root} is damaged ({type(exc).__name__}: {exc}); replace "
            f"{CIFAR10.base_folder}/ with a fresh copy, or remove it and add --download."
        ) from None
