"""qbench baseline: train the FP32 baseline, or import a checkpoint the user already has."""

from __future__ import annotations

import argparse
from pathlib import Path

from qbench.cli.common import add_workspace_args, console, progress, workspace_of


def add_data_args(parser: argparse.ArgumentParser) -> None:
    import qbench.data.builtin  # noqa: F401
    from qbench.data.registry import DATASETS
    from qbench.data.transforms import PRESETS

    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset",
        default="digits",
        metavar="NAME",
        help=f"dataset: {', '.join(DATASETS.names())} (default: digits, embedded, offline)",
    )
    group.add_argument("--data-root", type=Path, help="local folder of the dataset (folder datasets)")
    group.add_argument(
        "--image-size", type=int, help="input resolution (default: 64 for digits, else the model's)"
    )
    group.add_argument(
        "--augment",
        "--transforms",
        default="default",
        metavar="PRESET",
        help=f"transform preset: {', '.join(PRESETS)} (default: default)",
    )
    group.add_argument("--download", action="store_true", help="allow torchvision to download MNIST/CIFAR-10")
    group.add_argument(
        "--seed", type=int, default=42, help="seed for splits, init and shuffling (default: 42)"
    )


def add_parser(sub) -> None:
    from qbench.baselines.models import MODELS

    p = sub.add_parser(
        "baseline",
        help="train or import the FP32 baseline",
        description="Train the FP32 baseline (--train) or import an existing checkpoint (--import CKPT) into "
        "the workspace: baseline/model.pt and baseline/train.json.",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--train", action="store_true", help="train a baseline (the default action)")
    what.add_argument(
        "--import",
        dest="import_path",
        type=Path,
        metavar="CKPT",
        help="import an FP32 checkpoint (a state dict, e.g. torchvision weights on disk)",
    )
    what.add_argument(
        "--evaluate", action="store_true", help="evaluate the stored baseline on the test split"
    )
    p.add_argument(
        "--model",
        default="alexnet",
        metavar="NAME",
        help=f"architecture: {', '.join(MODELS.names())} (default: alexnet)",
    )
    p.add_argument("--num-classes", type=int, help="output classes (default: the dataset's)")
    add_data_args(p)
    t = p.add_argument_group("training (defaults: the reference preset of report 000)")
    t.add_argument(
        "--preset",
        default="reference",
        choices=["reference", "paper"],
        help="reference: AdamW, backbone/head LRs, label smoothing 0.1; paper: SGD momentum 0.9, wd 5e-4",
    )
    t.add_argument("--epochs", type=int, help="maximum epochs (default: 10)")
    t.add_argument("--batch-size", "--bs", type=int, help="training batch size (default: 64; 32 on digits)")
    t.add_argument("--lr", type=float, help="one learning rate for backbone and head")
    t.add_argument("--lr-backbone", type=float, help="backbone learning rate")
    t.add_argument("--lr-head", type=float, help="classifier learning rate")
    t.add_argument("--momentum", type=float, help="SGD momentum (paper preset)")
    t.add_argument("--weight-decay", "--wd", type=float, help="weight decay")
    t.add_argument("--label-smoothing", type=float, help="label smoothing of the loss")
    t.add_argument(
        "--patience", type=int, dest="early_stopping_patience", help="early-stopping patience (epochs)"
    )
    t.add_argument("--max-batches", type=int, help="cap batches per epoch (smoke runs)")
    t.add_argument("--workers", type=int, default=0, help="data-loader worker processes (default: 0)")
    t.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    t.add_argument(
        "--no-deterministic",
        dest="deterministic",
        action="store_false",
        help="allow non-deterministic kernels (faster on GPUs)",
    )
    add_workspace_args(p)
    p.add_argument("--out", type=Path, help="workspace folder (overrides --runs-dir/--exp)")
    p.set_defaults(func=run)


def request_from_args(args: argparse.Namespace):
    from qbench.baselines.models import MODELS
    from qbench.baselines.pipeline import BaselineRequest
    from qbench.baselines.trainer import TrainConfig
    from qbench.data.registry import DATASETS, DataConfig

    spec = MODELS.get(args.model)
    DATASETS.entry(args.dataset)
    size = args.image_size or (64 if args.dataset == "digits" else spec.default_input_size)
    data = DataConfig(
        name=args.dataset,
        root=args.data_root,
        image_size=size,
        seed=args.seed,
        augment=args.augment,
        download=args.download,
    )
    train = None
    if getattr(args, "import_path", None) is None:
        lr_b = _first(getattr(args, "lr_backbone", None), getattr(args, "lr", None))
        lr_h = _first(getattr(args, "lr_head", None), getattr(args, "lr", None))
        # digits has 1,257 training images: batch 32 gives the optimizer twice the steps per epoch
        defaults = {"epochs": 10, "batch_size": 32} if args.dataset == "digits" else {"epochs": 10}
        train = TrainConfig.from_preset(
            getattr(args, "preset", "reference"),
            **{
                **defaults,
                **{
                    k: v
                    for k, v in {
                        "epochs": getattr(args, "epochs", None),
                        "batch_size": getattr(args, "batch_size", None),
                        "lr_backbone": lr_b,
                        "lr_head": lr_h,
                        "momentum": getattr(args, "momentum", None),
                        "weight_decay": getattr(args, "weight_decay", None),
                        "label_smoothing": getattr(args, "label_smoothing", None),
                        "early_stopping_patience": getattr(args, "early_stopping_patience", None),
                        "max_batches": getattr(args, "max_batches", None),
                        "workers": getattr(args, "workers", None),
                        "device": getattr(args, "device", None),
                        "seed": args.seed,
                        "deterministic": getattr(args, "deterministic", None),
                    }.items()
                    if v is not None
                },
            },
        )
    return BaselineRequest(
        model=args.model,
        num_classes=getattr(args, "num_classes", None),
        data=data,
        train=train,
        import_path=getattr(args, "import_path", None),
        experiment=args.exp,
    )


def _first(*values):
    return next((v for v in values if v is not None), None)


def run(args: argparse.Namespace) -> int:
    from qbench.baselines.pipeline import make_baseline
    from qbench.workspace import Workspace

    ws = Workspace(args.out) if args.out else workspace_of(args)
    out = console()
    if args.evaluate:
        return evaluate_baseline(ws)
    request = request_from_args(args)
    with progress() as bar:
        record = make_baseline(ws, request, progress=bar)
    m = record["metrics"]
    what = (
        "imported"
        if request.import_path
        else f"trained {m['epochs_trained']} epochs in {m['train_seconds']:.0f} s"
    )
    out.print(
        f"baseline {request.model} ({what}): test top-1 {m['test_acc']:.2f}%, "
        f"{record['summary']['total_params']:,} parameters -> {ws.model_path}"
    )
    return 0


def evaluate_baseline(ws) -> int:
    """Print the stored baseline's test metrics, per class (the 'evaluate' command of reference 004)."""
    from qbench.baselines.checkpoint import load_checkpoint
    from qbench.baselines.pipeline import split_accuracy
    from qbench.data.registry import data_config_from_meta, load_data

    ws.require_baseline()
    model, meta = load_checkpoint(ws.model_path)
    acc = split_accuracy(model, load_data(data_config_from_meta(meta)).test, meta["class_names"])
    print(
        f"test images: {acc.n_images}  top-1: {acc.top1:.2f}%  top-5: {acc.top5:.2f}%  loss: {acc.loss:.4f}"
    )
    print(f"{'class':>8} {'precision':>10} {'recall':>8} {'f1':>8} {'support':>8}")
    for c in acc.per_class:
        print(f"{c.label:>8} {c.precision:>10.4f} {c.recall:>8.4f} {c.f1:>8.4f} {c.support:>8}")
    return 0
