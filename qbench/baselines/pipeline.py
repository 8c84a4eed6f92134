"""The baseline step: train (or import) the FP32 model and write baseline/ in the workspace."""

from __future__ import annotations

import time

import torch

from qbench import env
from qbench.baselines.architectures import paper_init
from qbench.baselines.checkpoint import import_checkpoint, save_checkpoint
from qbench.baselines.metrics import accuracy_stats
from qbench.baselines.models import MODELS, create_model
from qbench.baselines.request import BaselineRequest
from qbench.baselines.sizing import check_image_size
from qbench.baselines.summary import summarize
from qbench.baselines.trainer import TRAINING_PRECISION, StateFile, TrainOutcome, seed_everything, train
from qbench.data import views
from qbench.data.registry import DataSplits, load_data
from qbench.data.transforms import PRESETS as AUGMENT_PRESETS
from qbench.errors import QBenchError
from qbench.records import (
    AccuracyStats,
    BaselineSource,
    SplitMetrics,
    TrainConfig,
    TrainOutcomeRecord,
    TrainRecord,
)
from qbench.workspace import Workspace

# the resumable training state, beside model.pt
RESUME_STATE = "resume.pt"
# images per forward pass when the FP32 model is evaluated on a split
EVAL_BATCH_SIZE = 256


def split_accuracy(model: torch.nn.Module, split, class_names: list[str]) -> AccuracyStats:
    """Loss, top-1/top-5 and per-class P/R/F1 of the FP32 model on one split (one view per
    image, or ten crops averaged where the split yields them)."""
    model.eval()
    logits, labels = views.collect_logits(model, split, EVAL_BATCH_SIZE)
    return accuracy_stats(logits, labels, class_names)


def split_metrics(model: torch.nn.Module, split, class_names: list[str]) -> SplitMetrics:
    """One split's figures as train.json records them (reference 003's tables)."""
    stats = split_accuracy(model, split, class_names)
    return SplitMetrics(
        n_images=stats.n_images, loss=stats.loss, top1=stats.top1, top5=stats.top5, per_class=stats.per_class
    )


def _outcome_record(outcome: TrainOutcome) -> TrainOutcomeRecord:
    return TrainOutcomeRecord(
        epochs_trained=len(outcome.history),
        best_val_acc=outcome.best_val_acc,
        best_epoch=outcome.best_epoch,
        early_stopped=outcome.early_stopped,
        train_seconds=outcome.seconds,
        processes=outcome.processes,
        resumed_after_epoch=outcome.resumed_after_epoch,
    )


def _checked_class_count(request: BaselineRequest, data: DataSplits) -> int:
    num_classes = request.num_classes or data.num_classes
    if num_classes != data.num_classes:
        raise QBenchError(
            f"--num-classes {num_classes} does not match dataset {data.name!r} with {data.num_classes} "
            f"classes; pass --num-classes {data.num_classes}."
        )
    return num_classes


def check_request_fits(request: BaselineRequest) -> None:
    """The image size must suit the model, and its training step and evaluation this machine's
    memory (qbench.baselines.sizing); checked before the data is loaded. (BaselineRequest
    checked the class count when it was made.)"""
    train_batch = None if request.import_path is not None else (request.train or TrainConfig()).batch_size
    # the head's width barely matters to the bound; the smallest head keeps it a lower bound
    check_image_size(
        request.model, request.data.image_size, request.num_classes or 2, train_batch, EVAL_BATCH_SIZE
    )


def make_baseline(ws: Workspace, request: BaselineRequest, progress=None) -> TrainRecord | None:
    """Train or import the FP32 baseline; writes baseline/model.pt and baseline/train.json.
    Under torchrun every rank trains and rank 0 alone evaluates and writes (the other ranks
    return None)."""
    spec = MODELS.get(request.model)
    check_request_fits(request)
    data = load_data(request.data)
    num_classes = _checked_class_count(request, data)
    config: TrainConfig | None = None
    outcome: TrainOutcome | None = None
    if request.import_path is not None:
        model = import_checkpoint(request.import_path, request.model, num_classes)
        source = BaselineSource(kind="import", checkpoint=str(request.import_path))
    else:
        config = request.train or TrainConfig()
        seed_everything(config.seed, config.deterministic)  # before the weights are initialized
        model = create_model(request.model, num_classes=num_classes)
        if config.paper_init:
            paper_init(model)
        state = StateFile(
            ws.baseline_dir / RESUME_STATE,
            resume=request.resume,
            identity={"model": request.model, "data": request.data.to_dict()},
        )
        outcome = train(model, data, config, progress=progress, state_file=state)
        if not outcome.is_main:
            return None
        model = outcome.model
        source = BaselineSource(kind="train")
    # train is evaluated with test-time transforms: the figures describe the model, not the augmentation
    splits = {
        name: split_metrics(model, data.eval_split(name), data.class_names)
        for name in ("train", "val", "test")
    }
    meta = {
        "model": request.model,
        "num_classes": num_classes,
        "input_size": request.data.image_size,
        "class_names": data.class_names,
        "data": request.data.to_dict(),
    }
    save_checkpoint(ws.model_path, model, meta)
    augment = request.data.augment
    record = TrainRecord(
        experiment=request.experiment,
        model=request.model,
        model_description=spec.description,
        num_classes=num_classes,
        input_size=request.data.image_size,
        class_names=data.class_names,
        data=request.data,
        data_sizes=data.sizes(),
        data_info=data.info,
        augment_description=f"{augment}: {AUGMENT_PRESETS.get(augment, '')}",
        source=source,
        training=config,
        training_precision=TRAINING_PRECISION if config else None,
        outcome=_outcome_record(outcome) if outcome else None,
        history=outcome.history if outcome else [],
        splits=splits,
        summary=summarize(model, request.data.image_size, request.model, num_classes),
        env=env.capture(),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        skipped_images=data.skipped_images,
    )
    record.save_json(ws.train_json)
    return record
