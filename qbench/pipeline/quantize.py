"""The quantize step of the library API: convert the FP32 baseline into variants."""

from __future__ import annotations

from typing import Any

from qbench.records import DataConfig, QuantizeOptions, VariantRecord
from qbench.workspace import Workspace

REFERENCE_MODE = "fp32"  # every agreement is measured against this variant


def resolve_modes(requested: list[str] | None) -> list[str]:
    """The modes to convert, in the order asked; 'all' (or nothing) means every registered mode.
    An unknown mode is the registry's one-sentence error, raised before any work starts."""
    from qbench.exporters.base import EXPORTERS, modes

    available = modes()
    if not requested or "all" in requested:
        return available
    for mode in requested:
        EXPORTERS.entry(mode)
    return list(dict.fromkeys(requested))


def runnable_modes() -> dict[str, str | None]:
    """Each registered mode -> None when it can run on this machine, else why it is skipped."""
    from qbench import capabilities
    from qbench.exporters.base import EXPORTERS, modes

    return {
        mode: capabilities.first_missing(tuple(EXPORTERS.entry(mode).meta["requires"])) for mode in modes()
    }


def quantize(
    ws: Workspace, modes: list[str], options: QuantizeOptions, progress: Any = None
) -> list[VariantRecord]:
    """Convert the workspace's baseline into each mode (variants/<mode>/); records in order.
    ``progress``: a rich Progress (or None) that gets one task for the whole step."""
    from qbench.baselines.checkpoint import load_checkpoint
    from qbench.data.registry import load_data
    from qbench.exporters.base import ExportContext, run_export

    ws.require_baseline()
    modes = resolve_modes(modes)
    model, meta = load_checkpoint(ws.model_path)
    ctx = ExportContext(
        workspace=ws,
        model=model,
        meta=meta,
        options=options,
        data_loader=lambda: load_data(DataConfig.from_dict(meta["data"])),
        progress=progress,
    )
    records = []
    task = progress.add_task("quantize", total=len(modes), status="") if progress else None
    for mode in modes:
        if task is not None:
            progress.update(task, status=mode)
        records.append(run_export(mode, ctx))
        if task is not None:
            progress.advance(task)
    return records


def ensure_fp32(ws: Workspace) -> None:
    """variants/fp32 is the reference every agreement is measured against: make it if absent."""
    if not ws.variant_json(REFERENCE_MODE).is_file():
        quantize(ws, [REFERENCE_MODE], QuantizeOptions())


def describe(record: VariantRecord) -> str:
    """One line per variant: how long the conversion took and what it wrote, or why it did not."""
    if not record.ok:
        return f"{record.mode}: {record.status}: {record.skip_reason or record.note or 'no reason recorded'}"
    seconds = f"{record.conversion_seconds:.1f} s" if record.conversion_seconds is not None else "n/a"
    size = f"{record.artifact_bytes / 2**20:.2f} MiB" if record.artifact_bytes is not None else "size n/a"
    engine = f", engine {record.engine}" if record.engine else ""
    return f"{record.mode}: converted in {seconds}, {size}{engine} -> {record.artifact}"
