"""Accuracy through the runner being measured, and agreement with the FP32 logits.

The figures themselves come from ``qbench.baselines.metrics`` (re-exported here).

Each variant's test-split logits are saved as ``results/logits/<mode>.npy`` so agreement
with FP32 is computed from fp32's saved file, never by loading the FP32 model beside the
variant being measured.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from qbench.baselines.metrics import accuracy_stats, agreement
from qbench.workspace import Workspace, atomic_path

__all__ = ["accuracy_stats", "agreement", "collect_logits", "load_logits", "runner_forward", "save_logits"]


def runner_forward(runner):
    """``runner`` (loaded) as a function of a CPU batch to float32 CPU logits: on the runner's
    stream, in pieces no larger than it takes, each filled up to a batch size it takes (an engine
    built for fixed sizes) with the piece's own images, whose extra logits are dropped."""

    def run(x):
        n = len(x)
        size = runner.batch_size_for(n)
        if size != n:
            x = x[torch.arange(size) % n]
        out = runner.infer(runner.prepare(x))
        runner.sync()
        return runner.to_logits(out)[:n]

    def forward(x):
        cap = runner.max_batch_size() or len(x)
        with runner.on_stream():
            return torch.cat([run(x[i : i + cap]) for i in range(0, len(x), cap)])

    return forward


def collect_logits(runner, dataset, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Run the whole split through ``runner`` (already loaded); float32 logits and int labels.

    A ten-crop split (items V x C x H x W) is averaged over its views, as the baseline's own
    evaluation does (``qbench.data.views``)."""
    from qbench.data.views import collect_logits as collect_views

    return collect_views(runner_forward(runner), dataset, batch_size)


def logits_path(ws: Workspace, mode: str) -> Path:
    return ws.results_dir / "logits" / f"{mode}.npy"


def save_logits(ws: Workspace, mode: str, logits: np.ndarray) -> Path:
    path = logits_path(ws, mode)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, logits)
    return path


def load_logits(ws: Workspace, mode: str, n_images: int) -> np.ndarray | None:
    """Saved logits of ``mode`` when they cover the current test split and are newer than
    the baseline checkpoint (a retrained baseline makes them stale), else None."""
    path = logits_path(ws, mode)
    if not path.is_file():
        return None
    if ws.model_path.is_file() and path.stat().st_mtime < ws.model_path.stat().st_mtime:
        return None
    try:
        arr = np.load(path)
    except (OSError, ValueError):
        return None
    return arr if arr.ndim == 2 and arr.shape[0] == n_images else None
