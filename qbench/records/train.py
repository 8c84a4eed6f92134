"""What `qbench baseline` writes: baseline/train.json (TrainRecord) and its parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from qbench.records.base import Record
from qbench.records.config import DataConfig, TrainConfig
from qbench.records.env import EnvRecord
from qbench.records.metrics import ClassMetrics


@dataclass
class EpochRecord(Record):
    """One training epoch; accuracies in percent."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr_backbone: float
    lr_head: float
    seconds: float
    train_top5: float | None = None
    val_top5: float | None = None


@dataclass
class LayerRow(Record):
    name: str
    type: str
    output_shape: list[int]
    params: int
    flops: int


@dataclass
class ModelSummary(Record):
    """Reference 003's layer table and reference 000's model facts; FLOPs count MACs."""

    model: str
    input_size: int
    num_classes: int
    total_params: int
    trainable_params: int
    flops: int
    size_bytes: int  # FP32 parameters and buffers
    layers: list[LayerRow] = field(default_factory=list)
    DERIVED = ("non_trainable_params", "size_mb")

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def size_mb(self) -> float:
        """MiB, printed as 'MB' like reference 000."""
        return self.size_bytes / 2**20


@dataclass
class SplitMetrics(Record):
    """The FP32 model on one split (test-time transforms); accuracies in percent."""

    n_images: int
    loss: float
    top1: float
    top5: float
    per_class: list[ClassMetrics] = field(default_factory=list)


@dataclass
class TrainOutcomeRecord(Record):
    """Facts only a training run knows; absent (None) for an imported checkpoint."""

    epochs_trained: int
    best_val_acc: float
    best_epoch: int
    early_stopped: bool
    train_seconds: float
    processes: int = 1  # DistributedDataParallel world size (torchrun --nproc-per-node x --nnodes)
    resumed_after_epoch: int | None = None  # --resume: the epoch the saved state had finished


@dataclass
class BaselineSource(Record):
    kind: Literal["train", "import"]
    checkpoint: str | None = None  # the imported file


@dataclass
class TrainRecord(Record):
    KIND = "training record"
    REWRITE = "rerun 'qbench baseline --train' (or --import CKPT)"

    experiment: str
    model: str
    model_description: str
    num_classes: int
    input_size: int
    class_names: list[str]
    data: DataConfig
    data_sizes: dict[str, int]
    data_info: dict[str, Any]
    augment_description: str
    source: BaselineSource
    training: TrainConfig | None  # None: imported, not trained
    # the arithmetic of training: "fp32" (no autocast); mixed precision would name its dtype
    training_precision: str | None
    outcome: TrainOutcomeRecord | None
    history: list[EpochRecord]
    splits: dict[str, SplitMetrics]  # train (test-time transforms), val, test
    summary: ModelSummary
    env: EnvRecord
    created: str
    # unreadable image files left out of a folder data set (--skip-bad-images; their paths,
    # capped, are in data_info["skipped_images"]); 0 when every image read or none was checked
    skipped_images: int = 0

    @property
    def test(self) -> SplitMetrics:
        return self.splits["test"]

    @property
    def last_epoch(self) -> EpochRecord | None:
        return self.history[-1] if self.history else None
