"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse

from qbench.workspace import Workspace


def add_workspace_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("workspace")
    group.add_argument(
        "--runs-dir", default="runs", help="folder holding experiment workspaces (default: runs)"
    )
    group.add_argument(
        "--exp", default="default", help="experiment name: the workspace is RUNS_DIR/EXP (default: default)"
    )


def workspace_of(args: argparse.Namespace) -> Workspace:
    return Workspace.at(args.runs_dir, args.exp)


def parse_int_list(text: str) -> list[int]:
    """'1,8,16' -> [1, 8, 16]; used as an argparse type."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive whole numbers, got {text!r}")
    return values


def parse_name_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def console():
    """Rich console on stderr; wide enough for the tables when it writes to a log, not a terminal."""
    import sys

    from rich.console import Console

    return Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def progress(transient: bool = False):
    """A rich progress display on stderr (plain lines when stderr is not a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console(),
        transient=transient,
    )
