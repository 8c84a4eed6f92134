"""``qbench quantize``: convert the FP32 baseline into deployment variants."""

from __future__ import annotations

import argparse

from qbench.cli.common import (
    add_workspace_args,
    joined,
    parse_int_list,
    parse_name_list,
    progress,
    workspace_of,
)
from qbench.records import QuantizeOptions
from qbench.records.config import CALIB_METHODS, ENGINES


def add_parser(subparsers) -> argparse.ArgumentParser:
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
        "--engine",
        default=d.engine,
        help=f"int8-ptq/qat engine: {', '.join(ENGINES)} or auto (default: {d.engine})",
    )
    parser.add_argument("--calib-batches", type=int, default=d.calib_batches, help="calibration batches")
    parser.add_argument("--calib-batch-size", type=int, default=d.calib_batch_size, help="images per batch")
    parser.add_argument(
        "--calib-method",
        default=d.calib_method,
        help=f"{' | '.join(CALIB_METHODS)} (mapped per engine; recorded in variant.json; default: {d.calib_method})",
    )
    parser.add_argument(
        "--qat-epochs",
        type=int,
        default=d.qat_epochs,
        help=f"QAT fine-tuning epochs (default: {d.qat_epochs})",
    )
    parser.add_argument(
        "--qat-lr",
        type=float,
        default=d.qat_lr,
        help=f"QAT fine-tuning learning rate (default: {d.qat_lr:g})",
    )
    parser.add_argument(
        "--qat-max-batches", type=int, default=d.qat_max_batches, help="cap per QAT epoch (0: whole epochs)"
    )
    parser.add_argument("--device", default=d.device, help="cpu or cuda (TensorRT and ORT-CUDA need cuda)")
    parser.add_argument(
        "--batch-sizes",
        type=parse_int_list,
        default=d.batch_sizes,
        help="comma-separated batch sizes the TensorRT engines are built for, one optimization profile "
        f"each (bench only these; default: {joined(d.batch_sizes)})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help=f"seed of the calibration images' draw and of QAT (default: {d.seed})",
    )
    add_workspace_args(parser)
    parser.set_defaults(func=run)
    return parser


def options_from_args(args: argparse.Namespace) -> QuantizeOptions:
    return QuantizeOptions(
        calib_batches=args.calib_batches,
        calib_batch_size=args.calib_batch_size,
        calib_method=args.calib_method,
        engine=args.engine,
        qat_epochs=args.qat_epochs,
        qat_lr=args.qat_lr,
        qat_max_batches=args.qat_max_batches or None,  # 0: no cap
        device=args.device,
        seed=args.seed,
        batch_sizes=args.batch_sizes,
    )


def run(args: argparse.Namespace) -> int:
    from qbench import pipeline

    if args.list:
        for mode in pipeline.resolve_modes(["all"]):
            print(mode)
        return 0
    from qbench.cli.common import require_batches_fit, require_workspace_writable
    from qbench.preflight import require_device

    options = options_from_args(args)  # before the modes: listing the exporters imports torch
    selected = pipeline.resolve_modes(args.mode)
    ws = workspace_of(args)
    ws.require_baseline()
    require_workspace_writable(ws, ws.variants_dir)
    require_device(options.device)
    require_batches_fit(ws, [options.calib_batch_size], "--calib-batch-size")
    require_batches_fit(ws, options.batch_sizes, "--batch-sizes")  # the engines are verified at each
    with progress(transient=True) as bar:
        records = pipeline.quantize(ws, selected, options, bar)
    for record in records:
        print(pipeline.describe(record), flush=True)
    return 0
