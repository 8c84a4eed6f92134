"""Reference 000's sections 3, 4 and 6 (training configuration, results, stability) from a TrainRecord.

An imported checkpoint (``source.kind == "import"``) has no training config and no outcome:
its training fields print ``n/a (imported checkpoint: not trained by qbench)``, never a
measured-looking 0.0 or False.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qbench.records import EpochRecord, TrainRecord
from qbench.reports import fmt

NO_RECORD = "no training record: baseline/train.json is missing"
IMPORTED = "imported checkpoint: not trained by qbench"


@dataclass
class TrainFacts:
    available: bool  # a training run (not an import, not missing)
    seed: str
    reproducibility: str
    epochs_trained: str
    batch_size: str
    optimizer: str
    learning_rate: str
    weight_decay: str
    scheduler: str
    early_stopping_patience: str
    loss_function: str
    augmentation: str
    mixed_precision: str
    train_time: str
    best_val_acc: str
    final_train_acc: str
    final_val_acc: str
    final_train_loss: str
    final_val_loss: str
    best_epoch: str
    early_stopped: str
    early_stopped_word: str
    stability: str
    history: list[EpochRecord] = field(default_factory=list)


def _mixed_precision(precision: str | None, reason: str) -> str:
    if precision is None:
        return fmt.na(reason)
    if precision == "fp32":
        return "False (FP32 training, no autocast)"
    return f"True ({precision} autocast)"


def train_facts(train: TrainRecord | None) -> TrainFacts:
    if train is None:
        na = fmt.na(NO_RECORD)
        return TrainFacts(False, *([na] * 22))
    reason = IMPORTED if train.source.kind == "import" else "not recorded"
    na = fmt.na(reason)
    cfg, out, last = train.training, train.outcome, train.last_epoch
    if cfg is not None:
        seed = str(cfg.seed)
        determinism = (
            "deterministic algorithms requested (warn-only)"
            if cfg.deterministic
            else "deterministic algorithms not requested (faster, not bit-exact)"
        )
        reproducibility = f"Fixed random seed ({cfg.seed}), {determinism}"
        loss_fn = (
            f"CrossEntropyLoss with Label Smoothing ({cfg.label_smoothing})"
            if cfg.label_smoothing
            else "CrossEntropyLoss"
        )
        lr = f"backbone={fmt.short_float(cfg.lr_backbone)}, head={fmt.short_float(cfg.lr_head)}"
    else:
        seed = f"{train.data.seed} (data splits only; {IMPORTED})"
        reproducibility = f"Fixed data-split seed ({train.data.seed}); {IMPORTED}"
        loss_fn = lr = na
    return TrainFacts(
        available=cfg is not None,
        seed=seed,
        reproducibility=reproducibility,
        epochs_trained=str(out.epochs_trained) if out else na,
        batch_size=str(cfg.batch_size) if cfg else na,
        optimizer=cfg.optimizer if cfg else na,
        learning_rate=lr,
        weight_decay=fmt.short_float(cfg.weight_decay) if cfg else na,
        scheduler=cfg.scheduler if cfg else na,
        early_stopping_patience=str(cfg.early_stopping_patience) if cfg else na,
        loss_function=loss_fn,
        augmentation=(train.augment_description or fmt.na("not recorded")) + _skipped(train.skipped_images),
        mixed_precision=_mixed_precision(train.training_precision, reason),
        train_time=fmt.plain(out.train_seconds if out else None, 1, reason, " s"),
        best_val_acc=fmt.plain(out.best_val_acc if out else None, 4, reason, "%"),
        final_train_acc=fmt.plain(last.train_acc if last else None, 4, reason, "%"),
        final_val_acc=fmt.plain(last.val_acc if last else None, 4, reason, "%"),
        final_train_loss=fmt.plain(last.train_loss if last else None, 6, reason),
        final_val_loss=fmt.plain(last.val_loss if last else None, 6, reason),
        best_epoch=str(out.best_epoch) if out else na,
        early_stopped=str(out.early_stopped) if out else na,
        early_stopped_word=("Yes" if out.early_stopped else "No") if out else na,
        stability=stability(train.history) if out else na,
        history=list(train.history),
    )


def _skipped(count: int) -> str:
    return f"; {count} unreadable images left out (--skip-bad-images)" if count else ""


def stability(history: list[EpochRecord]) -> str:
    """A one-line verdict on the curves, derived from the recorded history only."""
    if len(history) < 2:
        return fmt.na("fewer than 2 epochs of history recorded")
    best = min(history, key=lambda h: h.val_loss)
    last = history[-1]
    if last.val_loss > best.val_loss * 1.10 and last.epoch != best.epoch:
        return (
            f"Validation loss rose from {best.val_loss:.4f} (epoch {best.epoch}) to {last.val_loss:.4f} "
            f"(epoch {last.epoch}): signs of overfitting"
        )
    if history[-1].train_loss >= history[0].train_loss:
        return "Training loss did not decrease over the run: check the learning rate"
    return "Loss/accuracy curves consistent with healthy optimization"
