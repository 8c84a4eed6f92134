"""Test-time views: one centre view, or reference 001's ten crops averaged.

A ten-crop split yields items of shape V x C x S x S; :func:`view_logits` runs the V views of
every image as one batch and averages the softmax predictions over them (the AlexNet paper's
"averaging the predictions of the softmax layer on the ten patches"), returned as the log of
the averaged probabilities so that loss, top-1 and top-5 read them like logits.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

from qbench.errors import QBenchError

__all__ = ["collect_logits", "view_logits", "with_transform"]


def with_transform(dataset: Any, transform: Callable) -> Any:
    """A shallow copy of ``dataset`` (through any Subset) whose items use ``transform``."""
    from torch.utils.data import Subset

    if isinstance(dataset, Subset):
        view = copy.copy(dataset)
        view.dataset = with_transform(dataset.dataset, transform)
        return view
    if not hasattr(dataset, "transform"):
        raise QBenchError(
            f"dataset {type(dataset).__name__} has no transform to swap; use --eval-crops center with it."
        )
    view = copy.copy(dataset)
    view.transform = transform
    if hasattr(view, "transforms"):  # torchvision VisionDataset keeps a second handle on it
        from torchvision.datasets.vision import StandardTransform

        view.transforms = StandardTransform(transform, getattr(view, "target_transform", None))
    return view


def view_logits(forward: Callable, x):
    """``forward`` on a batch B x C x H x W (its logits), or on B x V x C x H x W: the log of
    the softmax probabilities averaged over the V views."""
    import torch

    if x.dim() == 4:
        return forward(x)
    batch, views = x.shape[:2]
    logits = forward(x.flatten(0, 1)).float().reshape(batch, views, -1)
    return torch.logsumexp(logits.log_softmax(-1), dim=1) - math.log(views)


def collect_logits(forward: Callable, dataset: Any, batch_size: int = 64):
    """Float32 logits (averaged over views where the split has them) and int64 labels of a
    whole split, as numpy arrays; at most ``batch_size`` images go through ``forward`` at once."""
    import numpy as np
    import torch

    from qbench.data.registry import loader

    first = dataset[0][0]
    per_call = max(1, batch_size // first.shape[0]) if first.dim() == 4 else batch_size
    outs, labels = [], []
    with torch.no_grad():
        for x, y in loader(dataset, per_call):
            outs.append(view_logits(forward, x).float().cpu().numpy())
            labels.append(y.numpy())
    return np.concatenate(outs).astype(np.float32), np.concatenate(labels).astype(np.int64)
