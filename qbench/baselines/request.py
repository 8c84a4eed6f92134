"""What the baseline step is asked to do (torch-free, so the CLI can build one cheaply)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qbench.errors import QBenchError
from qbench.records import DataConfig, TrainConfig


@dataclass
class BaselineRequest:
    """The model, its data and the training config; ``import_path`` imports instead of training."""

    model: str = "alexnet"
    num_classes: int | None = None  # None: the dataset's class count
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig | None = None  # None with import_path: import instead of training
    import_path: Path | None = None
    experiment: str = "default"
    resume: bool = False  # continue from baseline/resume.pt (an interrupted --train)

    def __post_init__(self) -> None:
        if self.num_classes is not None and self.num_classes < 1:
            raise QBenchError(
                f"--num-classes {self.num_classes} is not a class count; leave it out to use the data set's."
            )
