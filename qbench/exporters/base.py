"""The exporter registry and the code every conversion shares.

An exporter is a function ``export(ctx, out_dir) -> Converted`` registered under its mode
name, declaring what the rest of qbench needs to know about it::

    @register_exporter("int8-ptq", requires=("ao-eager",), runner="torch", ops_unit="GOP/s",
                       libraries=("torch", "torchao"), description="static INT8, calibrated")
    def export_int8_ptq(ctx: ExportContext, out_dir: Path) -> Converted: ...

It writes its artifact into ``out_dir`` through a ``qbench.artifacts`` format and returns the
variant's own fields (:class:`Converted`). :func:`run_export` checks the declared requirements
first, adds the common fields from the registration (runner, unit of work, requirements,
provenance of the declared libraries), times the conversion and saves the
:class:`~qbench.records.VariantRecord`; a variant whose requirements are unmet is recorded as
skipped with the reason.

Every public module of this package is an exporter module, imported on the first lookup of
:data:`EXPORTERS`: adding a mode is adding one module. Third-party packages add modes through
the ``qbench.exporters`` entry point group.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata as md
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from qbench import __version__, capabilities
from qbench.errors import QBenchError
from qbench.records import BaselineRef, CalibrationInfo, QatInfo, QuantizeOptions, VariantRecord
from qbench.records.io import sha256_of
from qbench.records.variant import DEVICE_KINDS, OpsUnit
from qbench.registry import Registry
from qbench.workspace import Workspace

__all__ = [
    "EXPORTERS",
    "Converted",
    "ExportContext",
    "modes",
    "register_exporter",
    "run_export",
]


@dataclass
class Converted:
    """What an exporter returns: the VariantRecord fields only the conversion knows."""

    artifact: str  # relative to the variant's folder
    format: str  # a qbench.artifacts format name
    dtype: str  # the runner's input/output dtype
    engine: str
    weights: str | None = None
    activations: str | None = None
    granularity: str | None = None
    calibration: CalibrationInfo | None = None
    qat: QatInfo | None = None
    note: str | None = None
    # format-specific facts: quantized ops, opset, verification, engine choice, fused groups...
    details: dict[str, Any] = field(default_factory=dict)


ExportFn = Callable[["ExportContext", Path], Converted]
EXPORTERS: Registry[ExportFn] = Registry(
    "mode", flag="--mode", package="qbench.exporters", entry_point_group="qbench.exporters"
)


def register_exporter(
    mode: str,
    *,
    requires: Iterable[str] = (),
    runner: str = "torch",
    description: str = "",
    ops_unit: OpsUnit = "GFLOP/s",
    libraries: Iterable[str] = ("torch",),
    devices: Iterable[str] = DEVICE_KINDS,
):
    """Register ``export(ctx, out_dir) -> Converted`` as ``mode``.

    requires: capability names (qbench.capabilities) checked before converting; runner: the
    runners registry name that executes the artifact; ops_unit: GOP/s for integer arithmetic,
    GFLOP/s otherwise; libraries: the distributions whose versions go into the provenance;
    devices: the device kinds the artifact runs on (bench skips the variant elsewhere, saying so).
    """
    if ops_unit not in get_args(OpsUnit):
        raise ValueError(f"exporter {mode!r}: ops_unit must be one of {get_args(OpsUnit)}, not {ops_unit!r}")
    devices = tuple(devices)
    if not devices or set(devices) - set(DEVICE_KINDS):
        raise ValueError(
            f"exporter {mode!r}: devices must be a non-empty subset of {DEVICE_KINDS}, not {devices}"
        )
    unknown = sorted(set(requires) - set(capabilities.CHECKS))
    if unknown:
        raise ValueError(f"exporter {mode!r} requires unknown capabilities {unknown}")
    return EXPORTERS.register(
        mode,
        requires=tuple(requires),
        runner=runner,
        description=description,
        ops_unit=ops_unit,
        libraries=tuple(libraries),
        devices=devices,
    )


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

    def baseline(self) -> BaselineRef:
        return BaselineRef(
            model=str(self.meta["model"]),
            num_classes=int(self.meta["num_classes"]),
            input_size=self.input_size,
        )

    def example_input(self, batch: int = 1):
        import torch

        return torch.randn(
            batch, 3, self.input_size, self.input_size, generator=torch.Generator().manual_seed(0)
        )

    def calibration_batches(self) -> tuple[list[Any], CalibrationInfo]:
        """The calibration batches (test-time transforms, from the training split) and their record."""
        import torch

        from qbench.data.registry import loader, tensor_hash

        opts = self.options
        subset = self.data.calibration_set(opts.calib_batches * opts.calib_batch_size, opts.seed)
        batches = [x for x, _ in loader(subset, opts.calib_batch_size)]
        if not batches:
            raise QBenchError("the calibration set has no batches; pass --calib-batches 1 or more.")
        info = CalibrationInfo(
            method=opts.calib_method,
            batches=len(batches),
            images=sum(len(b) for b in batches),
            hash=tensor_hash(torch.cat(batches)),
            source="train split, test-time transforms",
        )
        return batches, info


def tool_versions(libraries: Iterable[str]) -> dict[str, str]:
    """Installed versions of the declared distributions (those not installed are left out)."""
    found: dict[str, str] = {}
    for dist in libraries:
        with contextlib.suppress(md.PackageNotFoundError):
            found[dist] = md.version(dist)
    return found


def run_export(mode: str, ctx: ExportContext) -> VariantRecord:
    """Convert the baseline into ``mode`` and save variants/<mode>/variant.json."""
    entry = EXPORTERS.entry(mode)
    out_dir = ctx.workspace.variant_dir(mode)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = VariantRecord(
        mode=mode,
        status="ok",
        runner=entry.meta["runner"],
        description=entry.meta["description"],
        baseline=ctx.baseline(),
        requires=list(entry.meta["requires"]),
        devices=list(entry.meta["devices"]),
        ops_unit=entry.meta["ops_unit"],
        options=ctx.options,
        tool_versions=tool_versions(entry.meta["libraries"]),
    )
    reason = capabilities.first_missing(entry.meta["requires"])
    if reason:
        record.status, record.skip_reason = "skipped", reason
    else:
        start = time.perf_counter()
        converted = entry.obj(ctx, out_dir)
        if not isinstance(converted, Converted):
            raise TypeError(f"exporter {mode!r} returned {type(converted).__name__}, not Converted")
        for f in dataclasses.fields(Converted):
            setattr(record, f.name, getattr(converted, f.name))
        record.conversion_seconds = time.perf_counter() - start
        record.artifact_bytes = (out_dir / converted.artifact).stat().st_size
        # what 'qbench run' checks before reusing the variant: this artifact, from this baseline
        record.artifact_sha256 = sha256_of(out_dir / converted.artifact)
    record.baseline.checkpoint_sha256 = sha256_of(ctx.workspace.model_path)
    record.qbench_version = __version__
    record.created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    record.save_json(ctx.workspace.variant_json(mode))
    return record


def modes() -> list[str]:
    return EXPORTERS.names()
