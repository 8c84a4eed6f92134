"""What `qbench quantize` writes: variants/<mode>/variant.json (VariantRecord, the provenance)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from qbench.records.base import Record
from qbench.records.config import QuantizeOptions

Status = Literal["ok", "skipped", "failed"]
OpsUnit = Literal["GFLOP/s", "GOP/s"]
DEVICE_KINDS = ("cpu", "cuda")


def device_kind(device: str) -> str:
    """'cpu' or 'cuda' for a device string such as 'cuda:1'."""
    return device.split(":", 1)[0]


def device_index(device: str, current: Callable[[], int]) -> int:
    """The CUDA index of ``device``: 'cuda:1' is 1, a bare 'cuda' is ``current()`` (torch's
    current device; ONNX Runtime and NVML count the visible devices the same way)."""
    _, _, index = device.partition(":")
    return int(index) if index else current()


@dataclass
class BaselineRef(Record):
    """The FP32 baseline a variant was converted from."""

    model: str
    num_classes: int
    input_size: int
    # sha256 of baseline/model.pt when the variant was converted: a retrained baseline makes it stale
    checkpoint_sha256: str | None = None


@dataclass
class CalibrationInfo(Record):
    method: str  # qbench's name: minmax | histogram | percentile | entropy
    batches: int
    images: int
    hash: str  # of the calibration tensors, so two variants can be shown to share a set
    source: str
    observer: str | None = None  # the back-end's own name for the method
    note: str | None = None


@dataclass
class QatEpoch(Record):
    """One epoch of fake-quant fine-tuning; accuracies in percent."""

    epoch: int
    train_loss: float
    train_acc: float
    val_acc: float


@dataclass
class QatInfo(Record):
    epochs: int
    lr: float
    optimizer: str
    batch_size: int
    batches_per_epoch: int
    observers_frozen_at_step: int
    bn_frozen_at_step: int
    bn_layers_frozen: bool
    fp32_val_acc: float  # %, the starting point, measured on the same val batches
    history: list[QatEpoch]
    data: str


@dataclass
class VariantRecord(Record):
    KIND = "variant record"
    REWRITE = "rerun 'qbench quantize' for that mode"

    mode: str
    status: Status
    runner: str
    description: str
    baseline: BaselineRef
    requires: list[str] = field(default_factory=list)
    # the device kinds the variant runs on ("cpu", "cuda"); bench skips it elsewhere with the reason
    devices: list[str] = field(default_factory=lambda: list(DEVICE_KINDS))
    # the unit of the achieved compute rate: GOP/s for integer arithmetic, GFLOP/s otherwise
    ops_unit: OpsUnit = "GFLOP/s"
    skip_reason: str | None = None
    artifact: str | None = None  # relative to the variant's folder
    format: str | None = None  # a qbench.artifacts format name
    dtype: str | None = None  # the runner's input/output dtype
    engine: str | None = None
    weights: str | None = None
    activations: str | None = None
    granularity: str | None = None
    calibration: CalibrationInfo | None = None
    qat: QatInfo | None = None
    note: str | None = None
    # format-specific facts (quantized ops, opset, verification against PyTorch, engine choice...)
    details: dict[str, Any] = field(default_factory=dict)
    conversion_seconds: float | None = None
    artifact_bytes: int | None = None
    # sha256 of the artifact as written (a folder: of its files), checked before the variant is reused
    artifact_sha256: str | None = None
    qbench_version: str = ""  # the qbench that converted it
    options: QuantizeOptions | None = None
    tool_versions: dict[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def precision_text(self) -> str | None:
        """'INT8 weights / UINT8 activations (per-channel ...)', or None when not recorded."""
        if not self.weights and not self.activations:
            return self.dtype.upper() if self.dtype else None
        if self.weights == self.activations or not self.activations:
            text = str(self.weights).upper()
        else:
            text = f"{str(self.weights).upper()} weights / {str(self.activations).upper()} activations"
        return f"{text} ({self.granularity})" if self.granularity else text
