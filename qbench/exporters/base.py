"""The exporter registry and the code every conversion shares.

An exporter is a function ``export(ctx, out_dir) -> dict`` registered under its mode name::

    @register_exporter("int8-ptq", requires=("ao-eager",), runner="torch",
                       description="static INT8, per-channel weights, calibrated")
    def export_int8_ptq(ctx: ExportContext, out_dir: Path) -> dict: ...

It writes its artifact into ``out_dir`` (atomically: ``qbench.workspace.atomic_path``) and
returns the variant's provenance fields (artifact file name, format, dtype, engine,
weight/activation precision, granularity, calibration...). :func:`run_export` adds the
common ones (mode, runner, conversion seconds, tool versions, baseline facts), checks the
declared requirements first, and writes ``variant.json``; a variant whose requirements are
not met is recorded as skipped with the reason.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qbench import capabilities
from qbench.registry import Registry
from qbench.workspace import Workspace, write_json

ExportFn = Callable[["ExportContext", Path], dict[str, Any]]
EXPORTERS: Registry[ExportFn] = Registry("mode", flag="--mode")


def register_exporter(
    mode: str, *, requires: tuple[str, ...] = (), runner: str = "torch", description: str = ""
):
    return EXPORTERS.register(mode, requires=requires, runner=runner, description=description)


ENGINES = ("x86", "pt2e")  # int8-ptq / qat engines; "auto" picks one (see int8_ptq.DEFAULT_ENGINE)
CALIB_METHODS = ("minmax", "histogram", "percentile", "entropy")


@dataclass
class QuantizeOptions:
    calib_batches: int = 8
    calib_batch_size: int = 32
    calib_method: str = "minmax"  # minmax | histogram | percentile | entropy (where the engine has it)
    engine: str = "auto"  # int8-ptq engine: x86 (torch.ao eager) | pt2e (torchao) | auto
    qat_epochs: int = 1
    qat_max_batches: int | None = None  # cap per QAT epoch; None = the whole training split
    qat_lr: float = 1e-5
    device: str = "cpu"
    seed: int = 42
    workers: int = 0

    def __post_init__(self) -> None:
        from qbench.errors import QBenchError

        if self.calib_batches < 1:
            raise QBenchError("the calibration set is empty; pass --calib-batches 1 or more.")
        if self.calib_batch_size < 1:
            raise QBenchError("--calib-batch-size must be 1 or more.")
        # checked here, before any conversion starts, so a typo does not surface after minutes of work
        if self.engine not in (*ENGINES, "auto"):
            raise QBenchError(f"unknown --engine {self.engine!r}; pass one of: {', '.join(ENGINES)}, auto.")
        if self.calib_method not in CALIB_METHODS:
            raise QBenchError(
                f"unknown --calib-method {self.calib_method!r}; pass one of: {', '.join(CALIB_METHODS)}."
            )
        if self.qat_epochs < 1:
            raise QBenchError("--qat-epochs must be 1 or more.")


@dataclass
class ExportContext:
    """Everything a conversion may read: the FP32 model, its metadata, the data, the options."""

    workspace: Workspace
    model: Any  # the FP32 nn.Module in eval mode; exporters must not modify it (deepcopy first)
    meta: dict[str, Any]  # the checkpoint metadata: model, num_classes, input_size, class_names, data
    options: QuantizeOptions
    data_loader: Callable[[], Any]  # () -> qbench.data.registry.DataSplits, built on first use
    progress: Any = None  # a rich Progress (or None): exporters add tasks for calibration / QAT
    _data: Any = field(default=None, repr=False)

    @property
    def data(self):
        if self._data is None:
            self._data = self.data_loader()
        return self._data

    @property
    def input_size(self) -> int:
        return int(self.meta["input_size"])

    def example_input(self, batch: int = 1):
        import torch

        return torch.randn(
            batch, 3, self.input_size, self.input_size, generator=torch.Generator().manual_seed(0)
        )

    def calibration_batches(self):
        """The calibration batches (test-time transforms, from the training split) and their hash."""
        import torch

        from qbench.data.registry import loader, tensor_hash

        opts = self.options
        subset = self.data.calibration_set(opts.calib_batches * opts.calib_batch_size, opts.seed)
        batches = [x for x, _ in loader(subset, opts.calib_batch_size)]
        if not batches:
            from qbench.errors import QBenchError

            raise QBenchError("the calibration set has no batches; pass --calib-batches 1 or more.")
        info = {
            "batches": len(batches),
            "images": sum(len(b) for b in batches),
            "hash": tensor_hash(torch.cat(batches)),
            "source": "train split, test-time transforms",
        }
        return batches, info


def tool_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for dist in ("torch", "torchvision", "torchao", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[dist] = md.version(dist)
    return out


def run_export(mode: str, ctx: ExportContext) -> dict[str, Any]:
    """Convert the baseline into ``mode`` and write variants/<mode>/variant.json."""
    import qbench.exporters.builtin  # noqa: F401

    entry = EXPORTERS.entry(mode)
    out_dir = ctx.workspace.variant_dir(mode)
    out_dir.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "mode": mode,
        "runner": entry.meta["runner"],
        "description": entry.meta["description"],
        "baseline": {k: ctx.meta.get(k) for k in ("model", "num_classes", "input_size")},
        "requires": list(entry.meta["requires"]),
    }
    reason = capabilities.first_missing(entry.meta["requires"])
    if reason:
        record.update(status="skipped", skip_reason=reason)
    else:
        start = time.perf_counter()
        fields = entry.obj(ctx, out_dir)
        record.update(fields)
        record.update(status="ok", conversion_seconds=time.perf_counter() - start)
        record.setdefault("artifact_bytes", (out_dir / record["artifact"]).stat().st_size)
    record["tool_versions"] = tool_versions()
    record["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_json(ctx.workspace.variant_json(mode), record)
    return record


def modes() -> list[str]:
    import qbench.exporters.builtin  # noqa: F401

    return EXPORTERS.names()
