"""Training presets of the reference documents, torch-free so the CLI can list them quickly.

- ``reference`` (000, the default): AdamW with separate backbone/head learning rates, weight
  decay 1e-4, label smoothing 0.1, ReduceLROnPlateau on validation accuracy, early stopping.
- ``paper`` (001/002): SGD, momentum 0.9, weight decay 5e-4, LR divided by 10 on plateau.
"""

from __future__ import annotations

from typing import Any

from qbench.errors import QBenchError
from qbench.records.config import TrainConfig

PRESETS: dict[str, dict[str, Any]] = {
    "reference": dict(
        optimizer="AdamW",
        lr_backbone=1e-4,
        lr_head=1e-3,
        weight_decay=1e-4,
        momentum=0.9,
        label_smoothing=0.1,
        scheduler="ReduceLROnPlateau",
        plateau_factor=0.1,
        plateau_patience=3,
        early_stopping_patience=10,
    ),
    "paper": dict(
        optimizer="SGD",
        lr_backbone=1e-2,
        lr_head=1e-2,
        weight_decay=5e-4,
        momentum=0.9,
        label_smoothing=0.0,
        scheduler="ReduceLROnPlateau",
        plateau_factor=0.1,
        plateau_patience=3,
        early_stopping_patience=10,
    ),
}


def from_preset(preset: str, **overrides: Any) -> TrainConfig:
    """The preset's TrainConfig; ``overrides`` that are None keep the preset's value."""
    if preset not in PRESETS:
        raise QBenchError(f"unknown training preset {preset!r}; use one of: {', '.join(PRESETS)}.")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    return TrainConfig(preset=preset, **values)
