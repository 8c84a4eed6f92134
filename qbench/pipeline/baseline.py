"""The baseline step of the library API: train or import the FP32 model, evaluate it."""

from __future__ import annotations

from typing import Any

from qbench.baselines.request import BaselineRequest
from qbench.records import AccuracyStats, DataConfig, TrainRecord
from qbench.workspace import Workspace


def baseline(ws: Workspace, request: BaselineRequest, progress: Any = None) -> TrainRecord:
    """Train (or import) the FP32 baseline; writes baseline/model.pt and baseline/train.json."""
    from qbench.baselines.pipeline import make_baseline

    return make_baseline(ws, request, progress=progress)


def evaluate_baseline(ws: Workspace) -> AccuracyStats:
    """The stored baseline's loss, top-1/top-5 and per-class figures on the test split."""
    from qbench.baselines.checkpoint import load_checkpoint
    from qbench.baselines.pipeline import split_accuracy
    from qbench.data.registry import load_data

    ws.require_baseline()
    model, meta = load_checkpoint(ws.model_path)
    data = load_data(DataConfig.from_dict(meta["data"]))
    return split_accuracy(model, data.test, meta["class_names"])


def made_how(train: TrainRecord) -> str:
    """'trained 10 epochs in 42 s', or 'imported' for a checkpoint brought in."""
    if train.outcome is None:
        return "imported"
    return f"trained {train.outcome.epochs_trained} epochs in {train.outcome.train_seconds:.0f} s"
