"""What `qbench evaluate` writes: evaluation/<name>.json, one variant (or checkpoint) on train/val/test."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from qbench.records.base import Record
from qbench.records.config import DataConfig
from qbench.records.result import AccuracyStats


@dataclass
class EvaluationRecord(Record):
    """Top-1/top-5, loss, per-class P/R/F1 and the confusion matrix per split (reference 003's
    tables, for any variant), measured through the variant's own runner."""

    KIND = "evaluation record"
    REWRITE = "rerun 'qbench evaluate'"

    name: str  # the variant's mode (fp32, int8-ptq, ...) or checkpoint-<file stem>
    source: Literal["variant", "checkpoint"]
    model: str
    runner: str
    device: str
    eval_crops: str  # center | ten (TenCrop + flips, softmax averaged over the 10 views)
    data: DataConfig
    class_names: list[str]
    splits: dict[str, AccuracyStats]  # train (test-time transforms), val, test: those asked for
    seconds: float
    created: str
    checkpoint: str | None = None  # --checkpoint PATH
    notes: list[str] = field(default_factory=list)
