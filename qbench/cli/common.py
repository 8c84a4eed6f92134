"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from pathlib import Path
from typing import Any

from qbench.workspace import Workspace


def default(config: type, name: str) -> Any:
    """The default of a config dataclass's field: flags take their defaults from the configs
    (``qbench.records.config``), so a default is written once."""
    f = next(f for f in dataclasses.fields(config) if f.name == name)
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def joined(values: Any) -> str:
    """[1, 8, 16] -> '1,8,16', the way such a flag is typed."""
    return ",".join(str(v) for v in values)


# the workspace defaults are Workspace.at's own
_AT = inspect.signature(Workspace.at).parameters
RUNS_DIR: str = _AT["runs_dir"].default
EXPERIMENT: str = _AT["exp"].default


def add_workspace_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("workspace")
    group.add_argument(
        "--runs-dir", default=RUNS_DIR, help=f"folder holding experiment workspaces (default: {RUNS_DIR})"
    )
    group.add_argument(
        "--exp",
        default=EXPERIMENT,
        help=f"experiment name: the workspace is RUNS_DIR/EXP (default: {EXPERIMENT})",
    )


def workspace_of(args: argparse.Namespace) -> Workspace:
    """RUNS_DIR/EXP, once EXP is a plain folder name (not empty, no '/' or '..')."""
    from qbench.errors import QBenchError
    from qbench.preflight import check_name

    if not str(args.runs_dir).strip():
        raise QBenchError("--runs-dir is empty; pass the folder that holds the workspaces (default: runs).")
    return Workspace.at(args.runs_dir, check_name(args.exp))


def require_workspace_writable(ws: Workspace, *folders: Path, out_flag: str | None = None) -> None:
    """Each of ``folders`` (of ``ws``; default its root) must be writable before work starts."""
    from qbench.preflight import require_writable_folder

    for folder in folders or (ws.root,):
        require_writable_folder(folder, out_flag or "--runs-dir/--exp")


def require_batches_fit(ws: Workspace, batch_sizes: list[int], flag: str) -> None:
    """Each batch size's FP32 input batch, at the baseline's model and image size, within this
    machine's memory (qbench.baselines.sizing); no check without a readable training record
    (the step itself then says what is missing)."""
    from qbench.baselines.sizing import check_batch_sizes
    from qbench.errors import QBenchError
    from qbench.records import TrainRecord

    try:
        train = TrainRecord.from_json(ws.train_json)
    except QBenchError:
        return
    check_batch_sizes(train.model, train.input_size, train.num_classes, batch_sizes, flag=flag)


def parse_int_list(text: str) -> list[int]:
    """'1,8,16' -> [1, 8, 16]; used as an argparse type. An empty item ('1,,4') or a value given
    twice ('1,1': two records of one batch size) is refused."""
    items = [v.strip() for v in text.split(",")]
    try:
        values = [int(v) for v in items]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers, got {text!r}"
            + (" (an empty item)" if "" in items else "")
        ) from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive whole numbers, got {text!r}")
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise argparse.ArgumentTypeError(
            f"{twice[0]} is given more than once in {text!r}; give each value once"
        )
    return values


def parse_name_list(text: str) -> list[str]:
    """'a, b,a' -> ['a', 'b'] (first occurrence kept); used as an argparse type. A list that names
    nothing ('' or ',') is refused: an unset shell variable must not mean 'all'."""
    names = list(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}, which names none")
    return names


def console():
    """Rich console on stderr; wide enough for the tables when it writes to a log, not a terminal."""
    import sys

    from rich.console import Console

    return Console(stderr=True, width=None if sys.stderr.isatty() else 160)


# the rate behind "time left" is taken over this window: steps of a few seconds each (a variant's
# batch sizes, an epoch) need a long one for an estimate at all
SPEED_WINDOW_S = 300.0


def progress(transient: bool = False):
    """A rich progress display on stderr with the time left (from the rate so far); in a log (not
    a terminal) a line per finished task and at most one progress line every 10 s, each with
    that estimate, so CI logs show that long work is moving and when it should end."""
    import sys

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if not sys.stderr.isatty():
        return _log_progress_class()(console=console())
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console(),
        transient=transient,
        speed_estimate_period=SPEED_WINDOW_S,
    )


def _log_progress_class():
    import time

    from rich.progress import Progress

    class LogProgress(Progress):
        interval_s = 10.0

        def __init__(self, console) -> None:
            super().__init__(console=console, disable=True, speed_estimate_period=SPEED_WINDOW_S)
            self._last_line = time.monotonic()

        def _report(self, task_id) -> None:
            task = self._tasks[task_id]
            now = time.monotonic()
            # coarse tasks (epochs, variants) get a line per step, fine ones (batches) are rate-limited
            coarse = (
                task.total is not None and task.total <= 20 and task.completed != task.fields.get("_shown")
            )
            if coarse or task.finished or now - self._last_line >= self.interval_s:
                task.fields["_shown"] = task.completed
                self._last_line = now
                total = f"/{task.total:.0f}" if task.total is not None else ""
                status = task.fields.get("status", "")
                left = task.time_remaining
                eta = f" (about {left:.0f} s left)" if left is not None and not task.finished else ""
                self.console.print(
                    f"{task.description.strip()}: {task.completed:.0f}{total}{eta} {status}".rstrip()
                )

        def update(self, task_id, **kwargs) -> None:
            super().update(task_id, **kwargs)
            self._report(task_id)

        def advance(self, task_id, advance: float = 1) -> None:
            super().advance(task_id, advance)
            self._report(task_id)

    return LogProgress
