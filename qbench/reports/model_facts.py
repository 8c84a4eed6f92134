"""The FP32 model behind a variant (reference 000's section 2), from the result or train.json."""

from __future__ import annotations

from dataclasses import dataclass

from qbench.records import BenchResult, TrainRecord


@dataclass
class ModelCells:
    name: str | None
    params: int | None
    trainable_params: int | None
    flops: int | None  # MACs per forward pass, as reference 000 counts them
    input_size: int | None
    num_classes: int | None
    fp32_size_mb: float | None


def model_cells(r: BenchResult, train: TrainRecord | None) -> ModelCells:
    """The result's ModelFacts (what was benchmarked), else the training record's summary."""
    if r.model is not None:
        m = r.model
        return ModelCells(
            name=m.name,
            params=m.total_params,
            trainable_params=m.trainable_params,
            flops=m.flops,
            input_size=m.input_size,
            num_classes=m.num_classes,
            fp32_size_mb=m.fp32_size_bytes / 2**20,
        )
    if train is not None:
        s = train.summary
        return ModelCells(
            name=s.model,
            params=s.total_params,
            trainable_params=s.trainable_params,
            flops=s.flops,
            input_size=s.input_size,
            num_classes=s.num_classes,
            fp32_size_mb=s.size_mb,
        )
    return ModelCells(None, None, None, None, None, None, None)
