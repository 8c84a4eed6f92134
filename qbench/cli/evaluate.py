"""qbench evaluate: a variant (or a checkpoint) on train/val/test, printed as reference 003's tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from qbench.cli.baseline import add_skip_bad_images_arg
from qbench.cli.common import add_workspace_args, console, parse_name_list, workspace_of

SPLITS = "train,val,test"
MAX_CONFUSION_CLASSES = 20  # wider matrices stay in the record only


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a variant or checkpoint on train/val/test (top-1/top-5, per-class P/R/F1)",
        description="Evaluate the FP32 baseline, a converted variant (through its own runner) or a qbench "
        "checkpoint on the train, val and test splits; writes evaluation/<name>.json in the workspace.",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--variant", metavar="MODE", help="a variant of the workspace (default: fp32)")
    what.add_argument("--checkpoint", type=Path, metavar="PATH", help="a qbench checkpoint file (model.pt)")
    p.add_argument(
        "--splits", type=parse_name_list, default=parse_name_list(SPLITS), help=f"splits (default: {SPLITS})"
    )
    p.add_argument(
        "--eval-crops",
        choices=("center", "ten"),
        help="test-time views: center, or ten (TenCrop + flips averaged); default: the baseline's",
    )
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default: 64)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    add_skip_bad_images_arg(p)
    add_workspace_args(p)
    p.add_argument("--out", type=Path, help="workspace folder (overrides --runs-dir/--exp)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qbench import pipeline
    from qbench.errors import QBenchError
    from qbench.reports.evaluation import evaluation_json
    from qbench.workspace import Workspace

    unknown = [s for s in args.splits if s not in ("train", "val", "test")]
    if unknown or not args.splits:
        raise QBenchError(f"--splits takes train, val and/or test, not {','.join(unknown) or 'nothing'}.")
    if args.batch_size < 1:
        raise QBenchError(f"--batch-size {args.batch_size} is too small; pass 1 or more.")
    ws = Workspace(args.out) if args.out else workspace_of(args)
    preflight(args, ws)
    record = pipeline.evaluate(
        ws,
        variant=args.variant,
        checkpoint=args.checkpoint,
        splits=tuple(args.splits),
        eval_crops=args.eval_crops,
        device=args.device,
        batch_size=args.batch_size,
        skip_bad_images=args.skip_bad_images,
    )
    print_record(record)
    console().print(f"-> {evaluation_json(ws, record.name)}")
    return 0


def preflight(args: argparse.Namespace, ws) -> None:
    """The checkpoint readable, evaluation/ writable and the device present, before any work."""
    from qbench.cli.common import require_batches_fit, require_workspace_writable
    from qbench.preflight import require_device, require_readable_file
    from qbench.reports.evaluation import evaluation_json

    if args.checkpoint is not None:
        require_readable_file(args.checkpoint, "--checkpoint")
    else:
        ws.require_baseline()
    folder = evaluation_json(ws, "fp32").parent
    require_workspace_writable(ws, folder, out_flag="--out" if args.out else None)
    require_device(args.device)
    if args.checkpoint is None:
        require_batches_fit(ws, [args.batch_size], "--batch-size")


def print_record(record) -> None:
    """Reference 003's tables on stdout: loss/accuracy per split, per-class P/R/F1, confusion."""
    from rich.console import Console
    from rich.table import Table

    from qbench.reports.evaluation import split_table

    out = Console(width=200)
    table = split_table(record)
    head = Table(title=f"{record.name} ({record.model}, {record.runner}, {record.eval_crops} crops)")
    head.add_column("")
    for title in table.titles:
        head.add_column(title, justify="right")
    head.add_row("Images", *(f"{n}" for n in table.n_images))
    head.add_row("Loss", *(f"{v:.4f}" for v in table.loss))
    head.add_row("Top-1 accuracy (%)", *(f"{v:.2f}" for v in table.top1))
    head.add_row("Top-5 accuracy (%)", *(f"{v:.2f}" for v in table.top5))
    head.add_row("Top-1 error (%)", *(f"{100 - v:.2f}" for v in table.top1))
    head.add_row("Top-5 error (%)", *(f"{100 - v:.2f}" for v in table.top5))
    out.print(head)
    per_class = Table(title="per-class precision / recall / F1")
    per_class.add_column("Class")
    for metric in ("Precision", "Recall", "F1"):
        for title in table.titles:
            per_class.add_column(f"{title} {metric}", justify="right")
    for line in table.per_class:
        per_class.add_row(line.label, *(f"{v:.4f}" for v in (*line.precision, *line.recall, *line.f1)))
    out.print(per_class)
    for split, stats in record.splits.items():
        if len(record.class_names) > MAX_CONFUSION_CLASSES:
            break
        matrix = Table(title=f"confusion matrix, {split} (rows: true class, columns: predicted)")
        matrix.add_column("")
        for name in record.class_names:
            matrix.add_column(name, justify="right")
        for name, row in zip(record.class_names, stats.confusion, strict=True):
            matrix.add_row(name, *(str(v) for v in row))
        out.print(matrix)
