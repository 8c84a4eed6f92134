"""The baseline step: train (or import) the FP32 model and write baseline/ in the workspace."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from qbench.baselines.checkpoint import import_checkpoint, save_checkpoint
from qbench.baselines.models import MODELS, create_model
from qbench.baselines.summary import summarize
from qbench.baselines.trainer import TrainConfig, seed_everything, train
from qbench.data.registry import DataConfig, data_config_to_meta, load_data, loader
from qbench.data.transforms import PRESETS as AUGMENT_PRESETS
from qbench.errors import QBenchError
from qbench.workspace import Workspace, write_json


@dataclass
class BaselineRequest:
    model: str = "alexnet"
    num_classes: int | None = None  # None: the dataset's class count
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig | None = None  # None with import_path: import instead of training
    import_path: Path | None = None
    experiment: str = "default"


def _env_facts(device: str) -> dict[str, Any]:
    return {
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "device": device,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def split_accuracy(model: torch.nn.Module, split, class_names: list[str]):
    """AccuracyStats (loss, top-1/top-5, per-class P/R/F1) of the FP32 model on one split."""
    from qbench.harness.accuracy import accuracy_stats

    logits, labels = [], []
    model.eval()
    with torch.no_grad():
        for x, y in loader(split, 256):
            logits.append(model(x))
            labels.append(y)
    return accuracy_stats(torch.cat(logits).numpy(), torch.cat(labels).numpy(), class_names)


def split_metrics(model: torch.nn.Module, split, class_names: list[str]) -> dict[str, Any]:
    """One split's figures as train.json records them (reference 003's tables)."""
    stats = split_accuracy(model, split, class_names)
    return {
        "n_images": stats.n_images,
        "loss": stats.loss,
        "acc": stats.top1,
        "top5": stats.top5,
        "per_class": [vars(c) for c in stats.per_class],
    }


def make_baseline(ws: Workspace, request: BaselineRequest, progress=None) -> dict[str, Any]:
    """Train or import the FP32 baseline; writes baseline/model.pt and baseline/train.json."""
    spec = MODELS.get(request.model)
    data = load_data(request.data)
    num_classes = request.num_classes or data.num_classes
    if num_classes != data.num_classes:
        raise QBenchError(
            f"--num-classes {num_classes} does not match dataset {data.name!r} with {data.num_classes} "
            f"classes; pass --num-classes {data.num_classes}."
        )
    if request.import_path is not None:
        model = import_checkpoint(request.import_path, request.model, num_classes)
        history, outcome = [], None
        source = {"source": "import", "checkpoint": str(request.import_path)}
    else:
        config = request.train or TrainConfig()
        seed_everything(config.seed, config.deterministic)  # before the weights are initialized
        model = create_model(request.model, num_classes=num_classes)
        outcome = train(model, data, config, progress=progress)
        model = outcome.model
        history = [vars(h) for h in outcome.history]
        source = {"source": "train", **config.to_dict()}
    device = request.train.device if request.train else "cpu"
    # train is evaluated with test-time transforms: the figures describe the model, not the augmentation
    splits = {
        name: split_metrics(model, split, data.class_names)
        for name, split in (("train", data.train_eval), ("val", data.val), ("test", data.test))
    }
    test = splits["test"]
    summary = summarize(model, request.data.image_size, request.model, num_classes)
    meta = {
        "model": request.model,
        "num_classes": num_classes,
        "input_size": request.data.image_size,
        "class_names": data.class_names,
        "data": data_config_to_meta(request.data),
    }
    save_checkpoint(ws.model_path, model, meta)
    last = history[-1] if history else {}
    metrics = {
        "epochs_trained": len(history),
        "best_val_acc": outcome.best_val_acc if outcome else None,
        "best_epoch": outcome.best_epoch if outcome else None,
        "final_train_acc": last.get("train_acc"),
        "final_val_acc": last.get("val_acc"),
        "final_train_loss": last.get("train_loss"),
        "final_val_loss": last.get("val_loss"),
        "early_stopped": outcome.early_stopped if outcome else False,
        "train_seconds": outcome.seconds if outcome else 0.0,
        "test_acc": test["acc"],
        "test_loss": test["loss"],
    }
    record = {
        "experiment": request.experiment,
        "config": {
            **meta,
            **source,
            "model_description": spec.description,
            "augment": f"{request.data.augment}: {AUGMENT_PRESETS.get(request.data.augment, '')}",
            "data": {**meta["data"], "sizes": data.sizes(), **data.info},
        },
        "history": history,
        "metrics": metrics,
        "splits": splits,
        "summary": summary.to_dict(),
        "env": _env_facts(device),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(ws.train_json, record)
    return record
