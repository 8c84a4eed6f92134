"""Training the FP32 baseline.

Presets follow the reference documents:

- ``reference`` (000, the default): AdamW with separate backbone/head learning rates, weight
  decay 1e-4, label smoothing 0.1, ReduceLROnPlateau on validation accuracy, early stopping.
- ``paper`` (001/002): SGD, momentum 0.9, weight decay 5e-4, LR divided by 10 on plateau.

The best checkpoint (by validation accuracy) is kept; per-epoch history goes to train.json.
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from qbench.baselines.models import head_parameter_names
from qbench.errors import QBenchError

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


@dataclass
class TrainConfig:
    preset: str = "reference"
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "AdamW"
    lr_backbone: float = 1e-4
    lr_head: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    label_smoothing: float = 0.1
    scheduler: str = "ReduceLROnPlateau"
    plateau_factor: float = 0.1
    plateau_patience: int = 3
    early_stopping_patience: int = 10
    seed: int = 42
    deterministic: bool = True
    device: str = "cpu"
    workers: int = 0
    max_batches: int | None = None  # cap per epoch, for smoke runs
    mixed_precision: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise QBenchError("--epochs must be 1 or more.")
        if self.batch_size < 1:
            raise QBenchError("--batch-size must be 1 or more.")
        if min(self.lr_backbone, self.lr_head) <= 0:
            raise QBenchError("learning rates must be positive; check --lr-backbone and --lr-head.")
        if self.optimizer not in ("AdamW", "SGD"):
            raise QBenchError(f"unknown optimizer {self.optimizer!r}; use AdamW or SGD.")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise QBenchError(
                "--device cuda was asked for but no CUDA device is available; use --device cpu."
            )

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> TrainConfig:
        if preset not in PRESETS:
            raise QBenchError(f"unknown training preset {preset!r}; use one of: {', '.join(PRESETS)}.")
        values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
        return cls(preset=preset, **values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr_backbone: float
    lr_head: float
    seconds: float


@dataclass
class TrainOutcome:
    model: nn.Module
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_val_acc: float = 0.0
    early_stopped: bool = False
    seconds: float = 0.0


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """Deterministic kernels while training only: the steps after it in the same process
    (conversion and calibration in 'qbench run') keep torch's defaults and its silence."""
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    if enabled:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    head = head_parameter_names(model)
    groups = [
        {"params": [p for n, p in model.named_parameters() if n not in head], "lr": config.lr_backbone},
        {"params": [p for n, p in model.named_parameters() if n in head], "lr": config.lr_head},
    ]
    groups = [g for g in groups if g["params"]]
    if config.optimizer == "AdamW":
        cls, kwargs = torch.optim.AdamW, {"weight_decay": config.weight_decay}
    else:
        cls, kwargs = torch.optim.SGD, {"momentum": config.momentum, "weight_decay": config.weight_decay}
    # the fused kernels make AlexNet's 57M-parameter update ~8x faster on the CPU (0.36 s -> 0.04 s)
    try:
        return cls(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return cls(groups, **kwargs)


def evaluate(model: nn.Module, batches, device: str, criterion: nn.Module) -> tuple[float, float]:
    """Mean loss and top-1 accuracy (%) over ``batches``."""
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            out = model(x)
            loss_sum += criterion(out, y).item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
            count += len(y)
    return loss_sum / max(count, 1), 100.0 * correct / max(count, 1)


def train(model: nn.Module, data, config: TrainConfig, progress=None) -> TrainOutcome:
    """Train ``model`` on ``data`` (DataSplits); returns the best model by validation accuracy."""
    with deterministic_algorithms(config.deterministic):
        return _train(model, data, config, progress)


def _train(model: nn.Module, data, config: TrainConfig, progress=None) -> TrainOutcome:
    from qbench.data.registry import loader

    seed_everything(config.seed, config.deterministic)
    device = config.device
    model = model.to(device)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    eval_criterion = nn.CrossEntropyLoss()
    optimizer = build_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=config.plateau_factor, patience=config.plateau_patience
    )
    train_loader = loader(
        data.train, config.batch_size, shuffle=True, workers=config.workers, seed=config.seed
    )
    val_loader = loader(data.val, 256, workers=config.workers)
    steps = len(train_loader) if config.max_batches is None else min(config.max_batches, len(train_loader))
    outcome = TrainOutcome(model=model)
    best_state = copy.deepcopy(model.state_dict())
    since_best = 0
    start = time.perf_counter()
    epoch_task = progress.add_task("training", total=config.epochs, status="") if progress else None
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        batch_task = progress.add_task(f"  epoch {epoch}", total=steps, status="") if progress else None
        loss_sum, correct, count = 0.0, 0, 0
        for i, (x, y) in enumerate(train_loader):
            if i >= steps:
                break
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad(set_to_none=True)
            out = model(x)
            loss = criterion(out, y)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
            count += len(y)
            if progress:
                progress.update(batch_task, advance=1, status=f"loss {loss_sum / count:.4f}")
        val_loss, val_acc = evaluate(model, val_loader, device, eval_criterion)
        scheduler.step(val_acc)
        lrs = [g["lr"] for g in optimizer.param_groups]
        record = EpochRecord(
            epoch=epoch,
            train_loss=loss_sum / max(count, 1),
            train_acc=100.0 * correct / max(count, 1),
            val_loss=val_loss,
            val_acc=val_acc,
            lr_backbone=lrs[0],
            lr_head=lrs[-1],
            seconds=time.perf_counter() - t0,
        )
        outcome.history.append(record)
        if val_acc > outcome.best_val_acc:
            outcome.best_val_acc, outcome.best_epoch = val_acc, epoch
            best_state = copy.deepcopy(model.state_dict())
            since_best = 0
        else:
            since_best += 1
        if progress:
            progress.remove_task(batch_task)
            progress.update(
                epoch_task,
                advance=1,
                status=f"epoch {epoch}: train {record.train_acc:.1f}% val {val_acc:.1f}% "
                f"(best {outcome.best_val_acc:.1f}% @ {outcome.best_epoch})",
            )
        if since_best >= config.early_stopping_patience:
            outcome.early_stopped = True
            break
    model.load_state_dict(best_state)
    outcome.model = model.eval().cpu()
    outcome.seconds = time.perf_counter() - start
    return outcome
