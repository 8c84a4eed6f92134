"""The baseline step of the library API: train or import the FP32 model, evaluate it."""

from __future__ import annotations

from typing import Any

from qbench.baselines.request import BaselineRequest
from qbench.records import AccuracyStats, DataConfig, TrainRecord
from qbench.workspace import Workspace


def baseline(ws: Workspace, request: BaselineRequest, progress: Any = None) -> TrainRecord | None:
    """Train (or import) the FP32 baseline; writes baseline/model.pt and baseline/train.json.
    Under torchrun, rank 0 writes and returns the record; the other ranks return None."""
    from qbench.baselines.pipeline import make_baseline

    return make_baseline(ws, request, progress=progress)


def launch_distributed(nproc: int, argv: list[str]) -> int:
    """Rerun the command line ``argv`` (without --nproc) on ``nproc`` local processes under
    torchrun (``--standalone``: a private rendezvous on a free port); its exit status."""
    import subprocess
    import sys

    from qbench.baselines.distributed import launched_world_size
    from qbench.errors import QBenchError

    if nproc < 1:
        raise QBenchError("--nproc must be 1 or more.")
    if launched_world_size() > 1:
        raise QBenchError("--nproc starts torchrun itself; under torchrun leave --nproc out.")
    args, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--nproc="):
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        args.append(arg)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    return subprocess.call([*torchrun, "-m", "qbench", *args])


def evaluate_baseline(ws: Workspace) -> AccuracyStats:
    """The stored baseline's loss, top-1/top-5 and per-class figures on the test split
    (seen as its data config's ``eval_crops`` say)."""
    from qbench.baselines.checkpoint import load_checkpoint
    from qbench.baselines.pipeline import split_accuracy
    from qbench.data.registry import load_data

    ws.require_baseline()
    model, meta = load_checkpoint(ws.model_path)
    data = load_data(DataConfig.from_dict(meta["data"]))
    return split_accuracy(model, data.eval_split("test"), meta["class_names"])


def made_how(train: TrainRecord) -> str:
    """'trained 10 epochs in 42 s', or 'imported' for a checkpoint brought in."""
    if train.outcome is None:
        return "imported"
    return f"trained {train.outcome.epochs_trained} epochs in {train.outcome.train_seconds:.0f} s"
