"""Training the FP32 baseline in FP32 arithmetic (no autocast).

The presets of the reference documents live in :mod:`qbench.baselines.presets` (torch-free,
re-exported here). The best checkpoint (by validation accuracy) is kept; the per-epoch
history goes to train.json.
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from qbench.baselines.models import head_parameter_names
from qbench.baselines.presets import PRESETS, from_preset
from qbench.errors import QBenchError
from qbench.records import EpochRecord, TrainConfig

__all__ = ["PRESETS", "TrainConfig", "TrainOutcome", "from_preset", "train"]

# what train() computes in: recorded as TrainRecord.training_precision
TRAINING_PRECISION = "fp32"


@dataclass
class TrainOutcome:
    model: nn.Module
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_val_acc: float = 0.0
    early_stopped: bool = False
    seconds: float = 0.0


def require_device(device: str) -> None:
    """A CUDA device must exist before training is asked to use one."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise QBenchError("--device cuda was asked for but no CUDA device is available; use --device cpu.")


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


@dataclass
class Tally:
    """Running loss and top-1/top-5 hits over the batches of one pass."""

    loss_sum: float = 0.0
    top1: int = 0
    top5: int = 0
    count: int = 0

    def add(self, out: torch.Tensor, y: torch.Tensor, loss: torch.Tensor) -> None:
        k = min(5, out.shape[1])
        self.loss_sum += loss.item() * len(y)
        self.top1 += (out.argmax(1) == y).sum().item()
        self.top5 += (out.topk(k, dim=1).indices == y[:, None]).any(dim=1).sum().item()
        self.count += len(y)

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.count, 1)

    @property
    def acc(self) -> float:
        return 100.0 * self.top1 / max(self.count, 1)

    @property
    def acc5(self) -> float:
        return 100.0 * self.top5 / max(self.count, 1)


def evaluate(model: nn.Module, batches, device: str, criterion: nn.Module) -> Tally:
    """Mean loss and top-1/top-5 accuracy (%) over ``batches``."""
    model.eval()
    tally = Tally()
    with torch.no_grad():
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            out = model(x)
            tally.add(out, y, criterion(out, y))
    return tally


def train(model: nn.Module, data, config: TrainConfig, progress=None) -> TrainOutcome:
    """Train ``model`` on ``data`` (DataSplits); returns the best model by validation accuracy."""
    with deterministic_algorithms(config.deterministic):
        return _train(model, data, config, progress)


def _train(model: nn.Module, data, config: TrainConfig, progress=None) -> TrainOutcome:
    from qbench.data.registry import loader

    require_device(config.device)
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
        seen = Tally()
        for i, (x, y) in enumerate(train_loader):
            if i >= steps:
                break
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad(set_to_none=True)
            out = model(x)
            loss = criterion(out, y)
            loss.backward()
            optimizer.step()
            seen.add(out.detach(), y, loss.detach())
            if progress:
                progress.update(batch_task, advance=1, status=f"loss {seen.loss:.4f}")
        val = evaluate(model, val_loader, device, eval_criterion)
        val_acc = val.acc
        scheduler.step(val_acc)
        lrs = [g["lr"] for g in optimizer.param_groups]
        record = EpochRecord(
            epoch=epoch,
            train_loss=seen.loss,
            train_acc=seen.acc,
            val_loss=val.loss,
            val_acc=val_acc,
            lr_backbone=lrs[0],
            lr_head=lrs[-1],
            seconds=time.perf_counter() - t0,
            train_top5=seen.acc5,
            val_top5=val.acc5,
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
