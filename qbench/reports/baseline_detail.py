"""Reference 003's tables for the FP32 baseline: the layer summary and metrics by split."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qbench.records import TrainRecord

SPLIT_TITLES = (("train", "Training"), ("val", "Validation"), ("test", "Testing"))


@dataclass
class LayerLine:
    type: str
    shape: str
    params: int


@dataclass
class ModelSummaryTable:
    layers: list[LayerLine]
    total_params: int
    trainable_params: int
    non_trainable_params: int


@dataclass
class PerClassLine:
    label: str
    precision: list[float]  # one per split, in SPLIT_TITLES order
    recall: list[float]
    f1: list[float]


@dataclass
class SplitTable:
    titles: list[str]
    n_images: list[int]
    loss: list[float]
    top1: list[float]
    top5: list[float]
    per_class: list[PerClassLine]


def model_summary(train: TrainRecord | None) -> ModelSummaryTable | None:
    if train is None or not train.summary.layers:
        return None
    s = train.summary
    return ModelSummaryTable(
        layers=[
            LayerLine(layer.type, "[" + ", ".join(str(d) for d in layer.output_shape) + "]", layer.params)
            for layer in s.layers
        ],
        total_params=s.total_params,
        trainable_params=s.trainable_params,
        non_trainable_params=s.non_trainable_params,
    )


def split_table(train: TrainRecord | None) -> SplitTable | None:
    if train is None or not all(key in train.splits for key, _ in SPLIT_TITLES):
        return None
    return tabulate_splits(train.splits)


def tabulate_splits(splits: Mapping[str, Any]) -> SplitTable:
    """Reference 003's tables from per-split figures (``SplitMetrics`` of the training record or
    ``AccuracyStats`` of an evaluation: both carry n_images, loss, top1, top5, per_class), in
    train, val, test order, for the splits present."""
    present = [(key, title) for key, title in SPLIT_TITLES if key in splits]
    rows = [splits[key] for key, _ in present]
    per_class = [
        PerClassLine(
            label=c.label,
            precision=[s.per_class[i].precision for s in rows],
            recall=[s.per_class[i].recall for s in rows],
            f1=[s.per_class[i].f1 for s in rows],
        )
        for i, c in enumerate(rows[-1].per_class)
        if all(len(s.per_class) > i for s in rows)
    ]
    return SplitTable(
        titles=[title for _, title in present],
        n_images=[s.n_images for s in rows],
        loss=[s.loss for s in rows],
        top1=[s.top1 for s in rows],
        top5=[s.top5 for s in rows],
        per_class=per_class,
    )
