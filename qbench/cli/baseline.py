"""qbench baseline: train the FP32 baseline, or import a checkpoint the user already has."""

from __future__ import annotations

import argparse
from pathlib import Path

from qbench.baselines.request import BaselineRequest
from qbench.cli.common import add_workspace_args, console, default, progress, workspace_of
from qbench.errors import QBenchError
from qbench.records import DataConfig, TrainConfig

# digits has 1,257 training images: batch 32 gives the optimizer twice the steps per epoch
DATASET_BATCH_SIZE = {"digits": 32}


def add_data_args(parser: argparse.ArgumentParser) -> None:
    from qbench.data.registry import DATASETS
    from qbench.data.transforms import PRESETS

    name, size = default(DataConfig, "name"), default(DataConfig, "image_size")
    augment, seed = default(DataConfig, "augment"), default(DataConfig, "seed")
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset",
        default=name,
        metavar="NAME",
        help=f"dataset: {', '.join(DATASETS.names())} (default: {name}, embedded, offline)",
    )
    group.add_argument("--data-root", type=Path, help="local folder of the dataset (folder datasets)")
    group.add_argument(
        "--image-size", type=int, help=f"input resolution (default: {size} for {name}, else the model's)"
    )
    group.add_argument(
        "--augment",
        "--transforms",
        default=augment,
        metavar="PRESET",
        help=f"transform preset: {', '.join(PRESETS)} (default: {augment})",
    )
    group.add_argument("--download", action="store_true", help="allow torchvision to download MNIST/CIFAR-10")
    add_skip_bad_images_arg(group)
    crops = default(DataConfig, "eval_crops")
    group.add_argument(
        "--eval-crops",
        choices=("center", "ten"),
        default=crops,
        help=f"test-time views: center, or ten (TenCrop + flips averaged, reference 001) (default: {crops})",
    )
    group.add_argument(
        "--seed", type=int, default=seed, help=f"seed for splits, init and shuffling (default: {seed})"
    )


def add_skip_bad_images_arg(group) -> None:
    group.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="folder data sets: leave out image files that cannot be read (counted in train.json) "
        "instead of stopping with their names",
    )


def add_parser(sub) -> None:
    from qbench.baselines.presets import PRESETS

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
    add_model_arg(p)
    p.add_argument("--num-classes", type=int, help="output classes (default: the dataset's)")
    add_data_args(p)
    t = p.add_argument_group("training (defaults: the reference preset of report 000)")
    t.add_argument(
        "--preset",
        default=default(TrainConfig, "preset"),
        choices=list(PRESETS),
        help="reference: AdamW, backbone/head LRs, label smoothing 0.1; paper: SGD momentum 0.9, wd 5e-4",
    )
    add_training_length_args(t)
    t.add_argument("--lr", type=float, help="one learning rate for backbone and head")
    t.add_argument("--lr-backbone", type=float, help="backbone learning rate")
    t.add_argument("--lr-head", type=float, help="classifier learning rate")
    t.add_argument("--momentum", type=float, help="SGD momentum (paper preset)")
    t.add_argument("--weight-decay", "--wd", type=float, help="weight decay")
    t.add_argument("--label-smoothing", type=float, help="label smoothing of the loss")
    t.add_argument(
        "--patience", type=int, dest="early_stopping_patience", help="early-stopping patience (epochs)"
    )
    workers, device = default(TrainConfig, "workers"), default(TrainConfig, "device")
    t.add_argument(
        "--workers", type=int, default=workers, help=f"data-loader worker processes (default: {workers})"
    )
    t.add_argument("--device", default=device, help=f"cpu or cuda (default: {device})")
    t.add_argument(
        "--paper-init",
        action="store_true",
        help="paper preset: the AlexNet paper's initialisation (biases 1 in conv2/4/5 and hidden FC)",
    )
    d = p.add_argument_group("distributed training and resuming")
    d.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train on N processes of this machine (launches torchrun --standalone --nproc-per-node N; "
        "one per GPU with --device cuda); for several machines run torchrun yourself (README)",
    )
    d.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted --train from baseline/resume.pt (same flags, --epochs may grow)",
    )
    d.add_argument(
        "--save-every",
        type=float,
        metavar="SECONDS",
        dest="save_every_s",
        help="write baseline/resume.pt after an epoch once SECONDS have passed since the last write, "
        f"and after the last epoch (default: {default(TrainConfig, 'save_every_s'):g}; 0: every epoch)",
    )
    t.add_argument(
        "--no-deterministic",
        dest="deterministic",
        action="store_false",
        help="allow non-deterministic kernels (faster on GPUs)",
    )
    add_workspace_args(p)
    p.add_argument("--out", type=Path, help="workspace folder (overrides --runs-dir/--exp)")
    p.set_defaults(func=run)


def add_model_arg(parser) -> None:
    from qbench.baselines.models import MODELS

    model = default(BaselineRequest, "model")
    parser.add_argument(
        "--model",
        default=model,
        metavar="NAME",
        help=f"architecture: {', '.join(MODELS.names())} (default: {model})",
    )


def add_training_length_args(group) -> None:
    """--epochs, --batch-size, --max-batches: shared by 'qbench baseline' and 'qbench run'."""
    batch = default(TrainConfig, "batch_size")
    small = "; ".join(f"{b} on {name}" for name, b in DATASET_BATCH_SIZE.items())
    group.add_argument(
        "--epochs", type=int, help=f"maximum epochs (default: {default(TrainConfig, 'epochs')})"
    )
    group.add_argument(
        "--batch-size", "--bs", type=int, help=f"training batch size (default: {batch}; {small})"
    )
    group.add_argument("--max-batches", type=int, help="cap training batches per epoch (smoke runs)")


def request_from_args(args: argparse.Namespace) -> BaselineRequest:
    """The BaselineRequest of 'qbench baseline' or 'qbench run' flags (run has fewer: the
    training flags it lacks keep the preset's values)."""
    from qbench.baselines.models import MODELS
    from qbench.baselines.presets import from_preset
    from qbench.data.registry import DATASETS

    spec = MODELS.get(args.model)
    DATASETS.entry(args.dataset)
    # the embedded data set's images are small: its default size, else the model's own
    embedded = args.dataset == default(DataConfig, "name")
    # a model of reference 004 brings its own transforms unless --augment names others
    augment = (
        spec.augment if args.augment == default(DataConfig, "augment") and spec.augment else args.augment
    )
    # 'is None', not 'or': --image-size 0 is a mistake to refuse, not a request for the default
    image_size = args.image_size
    if image_size is None:
        image_size = default(DataConfig, "image_size") if embedded else spec.default_input_size
    data = DataConfig(
        name=args.dataset,
        root=args.data_root,
        image_size=image_size,
        seed=args.seed,
        augment=augment,
        download=args.download,
        eval_crops=getattr(args, "eval_crops", default(DataConfig, "eval_crops")),
        skip_bad_images=bool(getattr(args, "skip_bad_images", False)),
    )
    train = None
    if getattr(args, "import_path", None) is None:
        flag = vars(args)
        one_lr = flag.get("lr")
        train = from_preset(
            flag.get("preset") or default(TrainConfig, "preset"),
            epochs=args.epochs,
            batch_size=_first(args.batch_size, DATASET_BATCH_SIZE.get(args.dataset)),
            max_batches=args.max_batches,
            lr_backbone=_first(flag.get("lr_backbone"), one_lr),
            lr_head=_first(flag.get("lr_head"), one_lr),
            momentum=flag.get("momentum"),
            weight_decay=flag.get("weight_decay"),
            label_smoothing=flag.get("label_smoothing"),
            early_stopping_patience=flag.get("early_stopping_patience"),
            workers=flag.get("workers"),
            device=flag.get("device"),
            deterministic=flag.get("deterministic"),
            seed=args.seed,
            paper_init=flag.get("paper_init") or None,
            save_every_s=flag.get("save_every_s"),
        )
    return BaselineRequest(
        model=args.model,
        num_classes=getattr(args, "num_classes", None),
        data=data,
        train=train,
        import_path=getattr(args, "import_path", None),
        experiment=args.exp,
        resume=bool(getattr(args, "resume", False)),
    )


def _first(*values):
    return next((v for v in values if v is not None), None)


def preflight(args: argparse.Namespace, request: BaselineRequest, ws, folders: tuple = ()) -> None:
    """What 'qbench baseline' and 'qbench run' need before the first minute of work: the files
    they read, the workspace's ``folders`` (default: baseline/) writable, a device this machine
    has. The class count, the image size and the data are checked next, by the baseline step
    itself before it trains (qbench.baselines.pipeline.check_request_fits, then the data set's
    builder)."""
    from qbench.cli.common import require_workspace_writable
    from qbench.preflight import require_device, require_readable_file, require_readable_folder

    if request.import_path is not None:
        require_readable_file(request.import_path, "--import")
    if request.data.root is not None:
        require_readable_folder(request.data.root, "--data-root")
    out_flag = "--out" if getattr(args, "out", None) else None
    require_workspace_writable(ws, *(folders or (ws.baseline_dir,)), out_flag=out_flag)
    if request.train is not None:
        require_device(request.train.device)


def run(args: argparse.Namespace) -> int:
    from qbench import pipeline
    from qbench.pipeline.baseline import made_how
    from qbench.workspace import Workspace

    ws = Workspace(args.out) if args.out else workspace_of(args)
    if args.evaluate:
        return evaluate_baseline(ws)
    request = request_from_args(args)
    if args.nproc is not None and args.nproc < 1:
        raise QBenchError(f"--nproc {args.nproc} is not a process count; pass 1 or more (or leave it out).")
    preflight(args, request, ws)
    if args.nproc:
        return pipeline.launch_distributed(args.nproc, args.argv)
    with progress() as bar:
        record = pipeline.baseline(ws, request, progress=bar)
    if record is None:  # a rank other than 0 of a torchrun run: rank 0 reports
        return 0
    console().print(
        f"baseline {request.model} ({made_how(record)}): test top-1 {record.test.top1:.2f}%, "
        f"{record.summary.total_params:,} parameters -> {ws.model_path}"
    )
    return 0


def evaluate_baseline(ws) -> int:
    """Print the stored baseline's test metrics, per class (the 'evaluate' command of reference 004)."""
    from qbench import pipeline

    acc = pipeline.evaluate_baseline(ws)
    print(
        f"test images: {acc.n_images}  top-1: {acc.top1:.2f}%  top-5: {acc.top5:.2f}%  loss: {acc.loss:.4f}"
    )
    print(f"{'class':>8} {'precision':>10} {'recall':>8} {'f1':>8} {'support':>8}")
    for c in acc.per_class:
        print(f"{c.label:>8} {c.precision:>10.4f} {c.recall:>8.4f} {c.f1:>8.4f} {c.support:>8}")
    return 0
