"""``qbench quantize``: convert the FP32 baseline into deployment variants."""

from __future__ import annotations

import argparse
from typing import Any

from qbench.cli.common import add_workspace_args, parse_name_list, progress, workspace_of
from qbench.workspace import Workspace


def add_parser(subparsers) -> argparse.ArgumentParser:
    from qbench.exporters.base import QuantizeOptions

    d = QuantizeOptions()
    parser = subparsers.add_parser(
        "quantize",
        help="convert the baseline into FP16/BF16/INT8/QAT/ONNX/TensorRT variants",
        description=(
            "Convert the FP32 baseline into one or more variants: each writes "
            "variants/<mode>/ (artifact + variant.json); a mode that cannot run here is recorded as skipped."
        ),
    )
    # validated against the exporter registry (not argparse choices) so the error is the registry's sentence
    parser.add_argument(
        "--mode",
        type=parse_name_list,
        default=["all"],
        metavar="M",
        help="mode(s), comma-separated, or 'all' (default): see 'qbench quantize --list'",
    )
    parser.add_argument("--list", action="store_true", help="list the modes and exit")
    parser.add_argument(
        "--engine", default=d.engine, help="int8-ptq/qat engine: x86 (torch.ao eager), pt2e (torchao), auto"
    )
    parser.add_argument("--calib-batches", type=int, default=d.calib_batches, help="calibration batches")
    parser.add_argument("--calib-batch-size", type=int, default=d.calib_batch_size, help="images per batch")
    parser.add_argument(
        "--calib-method",
        default=d.calib_method,
        help="minmax | histogram | percentile | entropy (mapped per engine; recorded in variant.json)",
    )
    parser.add_argument("--qat-epochs", type=int, default=d.qat_epochs)
    parser.add_argument("--qat-lr", type=float, default=d.qat_lr)
    parser.add_argument("--qat-max-batches", type=int, default=d.qat_max_batches, help="cap per QAT epoch")
    parser.add_argument("--device", default=d.device, help="cpu or cuda (TensorRT and ORT-CUDA need cuda)")
    parser.add_argument("--seed", type=int, default=d.seed)
    add_workspace_args(parser)
    parser.set_defaults(func=run)
    return parser


def resolve_modes(requested: list[str]) -> list[str]:
    from qbench.exporters.base import EXPORTERS, modes

    available = modes()
    if not requested or "all" in requested:
        return available
    for mode in requested:
        EXPORTERS.entry(mode)  # raises the registry's one-sentence error for an unknown mode
    return list(dict.fromkeys(requested))


def quantize_modes(ws: Workspace, modes: list[str], options, progress=None) -> list[dict[str, Any]]:
    """Convert the workspace's baseline into each mode; returns the variant records in order."""
    from qbench.baselines.checkpoint import load_checkpoint
    from qbench.data.registry import data_config_from_meta, load_data
    from qbench.exporters.base import ExportContext, run_export

    ws.require_baseline()
    modes = resolve_modes(modes)
    model, meta = load_checkpoint(ws.model_path)
    ctx = ExportContext(
        workspace=ws,
        model=model,
        meta=meta,
        options=options,
        data_loader=lambda: load_data(data_config_from_meta(meta)),
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


def describe(record: dict[str, Any]) -> str:
    if record.get("status") == "skipped":
        return f"{record['mode']}: skipped: {record.get('skip_reason')}"
    size = record.get("artifact_bytes", 0) / 2**20
    extra = record.get("engine_choice", {}).get("engine")
    tail = f", engine {extra}" if extra else ""
    return (
        f"{record['mode']}: converted in {record.get('conversion_seconds', 0):.1f} s, "
        f"{size:.2f} MiB{tail} -> {record['artifact']}"
    )


def run(args: argparse.Namespace) -> int:
    from qbench.exporters.base import QuantizeOptions, modes

    if args.list:
        for mode in modes():
            print(mode)
        return 0
    selected = resolve_modes(args.mode)
    options = QuantizeOptions(
        calib_batches=args.calib_batches,
        calib_batch_size=args.calib_batch_size,
        calib_method=args.calib_method,
        engine=args.engine,
        qat_epochs=args.qat_epochs,
        qat_lr=args.qat_lr,
        qat_max_batches=args.qat_max_batches,
        device=args.device,
        seed=args.seed,
    )
    ws = workspace_of(args)
    ws.require_baseline()
    with progress(transient=True) as bar:
        records = quantize_modes(ws, selected, options, bar)
    for record in records:
        print(describe(record), flush=True)
    return 0
