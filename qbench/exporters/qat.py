"""Quantization-aware training: fake-quant fine-tuning of the FP32 baseline, then INT8.

Preparation, conversion, checks and saving are int8-ptq's (same engines, same artifact
formats and loaders); only the training loop lives here. Observers are frozen after
OBSERVER_FREEZE of the steps and batch-norm statistics after BN_FREEZE, the usual recipe:
the quantization ranges settle first, then the network adapts to fixed ranges.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qbench.allocator import retained_heap
from qbench.artifacts import ao_eager
from qbench.artifacts._torch import quiet
from qbench.artifacts.ao_eager import eager_convert, eager_prepare
from qbench.errors import QBenchError
from qbench.exporters.base import Converted, ExportContext, register_exporter
from qbench.exporters.int8_ptq import (
    LIBRARIES,
    _check_runs,
    auto_engine,
    explicit_choice,
    pt2e_convert,
    pt2e_prepare,
    reused_choice,
    save_int8,
)
from qbench.records import QatEpoch, QatInfo

OBSERVER_FREEZE = 0.5
BN_FREEZE = 0.75
BATCH_SIZE = 32


class _Phases:
    """Switches between train and eval behaviour and freezes observers/BN for either engine."""

    def __init__(self, engine: str, model):
        self.engine, self.model = engine, model
        self.bn_frozen = 0

    def train(self) -> None:
        if self.engine == "x86":
            self.model.train()
        else:
            from torchao.quantization.pt2e import move_exported_model_to_train

            move_exported_model_to_train(self.model)
        if self.bn_frozen:
            self.freeze_bn()

    def eval(self) -> None:
        if self.engine == "x86":
            self.model.eval()
        else:
            from torchao.quantization.pt2e import move_exported_model_to_eval

            move_exported_model_to_eval(self.model)

    def freeze_observers(self) -> None:
        if self.engine == "x86":
            from torch.ao.quantization import disable_observer
        else:
            from torchao.quantization.pt2e import disable_observer
        self.model.apply(disable_observer)

    def freeze_bn(self) -> None:
        if self.engine == "x86":
            from torch.ao.nn.intrinsic.qat import freeze_bn_stats

            self.model.apply(freeze_bn_stats)
            self.bn_frozen = sum(1 for m in self.model.modules() if hasattr(m, "freeze_bn_stats"))
            return
        # the exported graph holds batch norm as an aten op whose 6th argument is `training`
        count = 0
        for node in self.model.graph.nodes:
            if node.op == "call_function" and "batch_norm" in str(node.target) and len(node.args) > 5:
                if node.args[5] is True:
                    node.args = (*node.args[:5], False, *node.args[6:])
                count += 1
        if count:
            self.model.recompile()
        self.bn_frozen = count


def _accuracy(model, batches) -> float:
    """Top-1 accuracy in percent."""
    correct = total = 0
    with torch.no_grad():
        for x, y in batches:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return 100.0 * correct / max(total, 1)


def choose_engine(ctx: ExportContext, out_dir: Path) -> dict[str, Any]:
    """The engine's choice record, settled before any training: an explicit ``--engine``; for auto,
    int8-ptq's measurement when it was taken for this baseline here, else a measurement of quick
    PTQ conversions (one calibration batch: speed does not depend on calibration)."""
    requested = ctx.options.engine
    if requested != "auto":
        choice = explicit_choice(requested)
        if choice["engine"] == "x86":
            probe_eager(ctx)
        return choice
    reused = reused_choice(ctx)
    if reused is not None:
        return reused
    batches, _ = ctx.calibration_batches()
    with tempfile.TemporaryDirectory(prefix="qbench-engine-", dir=out_dir) as tmp:
        _, choice = auto_engine(ctx, batches[:1], "minmax", Path(tmp), mode="qat")
    return choice


def probe_eager(ctx: ExportContext) -> None:
    """Fail before training when eager mode cannot quantize this architecture: run the quantized
    module structure, built from the architecture without converting any weights."""
    base = ctx.baseline()
    try:
        with quiet():
            skeleton = ao_eager.skeleton_for(base.model, base.num_classes, base.input_size, runnable=True)
    except Exception as exc:  # torch.ao raises assorted types for unsupported patterns
        raise QBenchError(
            f"eager mode cannot convert this model ({type(exc).__name__}); pass --engine pt2e."
        ) from None
    _check_runs(skeleton, ctx.example_input(2), "x86")


def _prepare(ctx: ExportContext, engine: str):
    """The fake-quant model of ``engine``."""
    if engine == "x86":
        return eager_prepare(ctx.model, qat=True)
    try:
        return pt2e_prepare(ctx.model, ctx.example_input(2), qat=True)
    except ValueError as exc:  # torchao's x86 quantizer refuses QAT patterns it cannot partition
        raise QBenchError(
            f"torchao's PT2E QAT cannot annotate this architecture ({exc}); quantize it with "
            "--mode int8-ptq instead."
        ) from None


def fine_tune(ctx: ExportContext, prepared: Any, engine: str, mode: str = "qat") -> QatInfo:
    """Fake-quant fine-tuning of ``prepared`` (a model of ``engine``: x86 or pt2e), in place:
    SGD on the training split, observers frozen after OBSERVER_FREEZE of the steps and batch norm
    after BN_FREEZE, validation accuracy (fake-quant) after each epoch."""
    from qbench.data.registry import loader

    opts = ctx.options
    torch.manual_seed(opts.seed)
    data = ctx.data
    val = list(loader(data.val, 64))
    fp32_val = _accuracy(ctx.model, val)
    phases = _Phases(engine, prepared)
    optimizer = torch.optim.SGD(prepared.parameters(), lr=opts.qat_lr, momentum=0.9)
    steps_per_epoch = len(loader(data.train, BATCH_SIZE))
    if opts.qat_max_batches:
        steps_per_epoch = min(steps_per_epoch, opts.qat_max_batches)
    total = steps_per_epoch * opts.qat_epochs
    observer_step, bn_step = int(total * OBSERVER_FREEZE), int(total * BN_FREEZE)
    history, step = [], 0
    for epoch in range(1, opts.qat_epochs + 1):
        task = None
        if ctx.progress:
            task = ctx.progress.add_task(
                f"{mode} epoch {epoch}/{opts.qat_epochs}", total=steps_per_epoch, status=""
            )
        phases.train()
        loss_sum = correct = seen = 0
        with quiet(), retained_heap():  # freed gradients stay in the heap between steps
            for i, (x, y) in enumerate(loader(data.train, BATCH_SIZE, shuffle=True, seed=opts.seed + epoch)):
                if i >= steps_per_epoch:
                    break
                if step == observer_step:
                    phases.freeze_observers()
                if step == bn_step:
                    phases.freeze_bn()
                optimizer.zero_grad()
                logits = prepared(x)
                loss = nn.functional.cross_entropy(logits, y)
                loss.backward()
                optimizer.step()
                step += 1
                loss_sum += loss.item() * len(y)
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
                if task is not None:
                    ctx.progress.update(task, advance=1, status=f"loss {loss.item():.3f}")
            phases.eval()
            val_acc = _accuracy(prepared, val)
        history.append(
            QatEpoch(
                epoch=epoch, train_loss=loss_sum / seen, train_acc=100.0 * correct / seen, val_acc=val_acc
            )
        )
    return QatInfo(
        epochs=opts.qat_epochs,
        lr=opts.qat_lr,
        optimizer="SGD, momentum 0.9",
        batch_size=BATCH_SIZE,
        batches_per_epoch=steps_per_epoch,
        observers_frozen_at_step=observer_step,
        bn_frozen_at_step=bn_step,
        bn_layers_frozen=phases.bn_frozen > 0,
        fp32_val_acc=fp32_val,
        history=history,
        data="train split (training augmentation); val_acc on the val split with fake-quant",
    )


@register_exporter(
    "qat",
    ops_unit="GOP/s",
    devices=("cpu",),  # converted to int8-ptq's CPU engines
    libraries=LIBRARIES,
    description="quantization-aware training (fake-quant fine-tuning), then converted like int8-ptq",
)
def export_qat(ctx: ExportContext, out_dir: Path) -> Converted:
    choice = choose_engine(ctx, out_dir)
    engine = choice["engine"]
    with quiet():
        prepared = _prepare(ctx, engine)
    qat = fine_tune(ctx, prepared, engine)
    converted = eager_convert(prepared) if engine == "x86" else pt2e_convert(prepared)
    result = save_int8(choice, converted, ctx, out_dir, "model-qat")
    result.qat = qat
    return result
