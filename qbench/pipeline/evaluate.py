"""The evaluate step of the library API: one variant (or checkpoint) on train, val and test.

Reference 004's ``evaluate`` command and reference 003's per-split tables for any variant:
top-1/top-5, loss, per-class precision/recall/F1 and the confusion matrix, measured through
the variant's own runner (the FP32 checkpoint through eager PyTorch), written as
``evaluation/<name>.json``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from qbench.records import DataConfig, EvaluationRecord
from qbench.workspace import Workspace

SPLITS = ("train", "val", "test")


def _checkpoint_forward(path: Path, device: str):
    """The FP32 model of a qbench checkpoint as a forward function, and its metadata."""
    import torch

    from qbench.baselines.checkpoint import load_checkpoint

    model, meta = load_checkpoint(path)
    model = model.to(device).eval()

    def forward(x: torch.Tensor) -> torch.Tensor:
        return model(x.to(device)).float().cpu()

    return forward, meta, (lambda: None)


def _variant_forward(ws: Workspace, mode: str, meta: dict, device: str):
    """The variant's runner as a forward function (fp32 without a variant record: the checkpoint)."""
    from qbench.harness.accuracy import runner_forward
    from qbench.harness.sweep import checkpoint_variant
    from qbench.records import VariantRecord
    from qbench.runners.base import create_runner

    if ws.variant_json(mode).is_file():
        variant, folder = VariantRecord.from_json(ws.variant_json(mode)), ws.variant_dir(mode)
    elif mode == "fp32":
        variant, folder = checkpoint_variant(ws, meta)
    else:
        from qbench.pipeline.bench import select_modes

        select_modes(ws, [mode])  # raises the no-such-variant error naming the fix
    runner = create_runner(variant, folder, device=device)
    runner.load()
    return runner_forward(runner), variant.runner, runner.close


def evaluate(
    ws: Workspace,
    variant: str | None = None,
    checkpoint: Path | None = None,
    splits: tuple[str, ...] = SPLITS,
    eval_crops: str | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    skip_bad_images: bool = False,
) -> EvaluationRecord:
    """Evaluate ``variant`` (default fp32) of the workspace, or the qbench ``checkpoint`` file,
    on ``splits``; ``eval_crops`` (center | ten) overrides the data config's, ``skip_bad_images``
    leaves unreadable images of a folder data set out. Writes the record."""
    from qbench.baselines.checkpoint import load_checkpoint
    from qbench.baselines.metrics import accuracy_stats
    from qbench.data import views
    from qbench.data.registry import load_data
    from qbench.pipeline.bench import check_device
    from qbench.reports.evaluation import evaluation_json

    check_device(device)
    start = time.perf_counter()
    if checkpoint is not None:
        forward, meta, close = _checkpoint_forward(Path(checkpoint), device)
        name, runner, source = f"checkpoint-{Path(checkpoint).stem}", "torch", "checkpoint"
    else:
        ws.require_baseline()
        _, meta = load_checkpoint(ws.model_path)
        name, source = variant or "fp32", "variant"
        forward, runner, close = _variant_forward(ws, name, meta, device)
    config = DataConfig.from_dict(meta["data"], "the checkpoint's data config")
    if eval_crops:
        config = dataclasses.replace(config, eval_crops=eval_crops)
    if skip_bad_images:
        config = dataclasses.replace(config, skip_bad_images=True)
    data = load_data(config)
    try:
        stats = {}
        for split in splits:
            logits, labels = views.collect_logits(forward, data.eval_split(split), batch_size)
            stats[split] = accuracy_stats(logits, labels, data.class_names)
    finally:
        close()
    record = EvaluationRecord(
        name=name,
        source=source,
        model=meta["model"],
        runner=runner,
        device=device,
        eval_crops=config.eval_crops,
        data=config,
        class_names=data.class_names,
        splits=stats,
        seconds=time.perf_counter() - start,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        checkpoint=str(checkpoint) if checkpoint is not None else None,
    )
    record.save_json(evaluation_json(ws, name))
    return record
