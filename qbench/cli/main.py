"""Entry point of the ``qbench`` console script.

A subcommand that writes into a workspace runs under that workspace's lock (qbench.lock): a
second writer refuses with one sentence naming the holder, or waits with ``--wait-lock``. The
writers are ``baseline`` (not ``--evaluate``), ``evaluate``, ``quantize`` (not ``--list``),
``bench``, ``run`` and ``regress --ab`` (both workspaces). The others only read a workspace and
take no lock: ``info``, ``recipes``, ``regress`` without ``--ab`` (what it saves goes outside the
workspace), and ``compare``, which reads whole records (every record is written atomically) and
writes its reports file by file, atomically, so it can run beside a bench. Once the lock is held,
the temporary files of writes killed earlier are removed from the workspace.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import shlex
import sys
from pathlib import Path

from qbench import __version__
from qbench.baselines.distributed import current
from qbench.errors import QBenchError

# order = the order in `qbench --help`, the order of the pipeline
SUBCOMMANDS = ("baseline", "evaluate", "quantize", "bench", "compare", "regress", "run", "info", "recipes")
# the subcommands that can write into a workspace (see locked_workspaces for when they do)
WRITERS = ("baseline", "evaluate", "quantize", "bench", "regress", "run")
CREATORS = ("baseline", "evaluate", "run")  # those that may make the workspace folder itself


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qbench",
        description=(
            "Quantization and deployment benchmarking: train or import an FP32 classifier, convert it "
            "to FP16/BF16/INT8/QAT/ONNX/TensorRT variants, measure each with one harness, report."
        ),
        epilog="Pipeline: baseline -> quantize -> bench -> compare (-> regress). 'qbench run' does it all.",
    )
    parser.add_argument("--version", action="version", version=f"qbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"qbench.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"qbench.cli.{name}":
                continue  # subcommand not part of this build
            raise
        module.add_parser(sub)
    for name in WRITERS:
        if name in sub.choices:
            sub.choices[name].add_argument(
                "--wait-lock",
                action="store_true",
                help="if another qbench command is writing the workspace, wait for it to finish "
                "(default: refuse and name it)",
            )
    return parser


def locked_workspaces(args: argparse.Namespace) -> list[Path]:
    """The workspace folders this command writes into, each to be locked while it runs."""
    from qbench.cli.common import workspace_of

    command = args.command
    if command == "regress":
        return [Path(p) for p in getattr(args, "ab", None) or [] if Path(p).is_dir()]
    if command not in WRITERS:
        return []
    if (command == "baseline" and getattr(args, "evaluate", False)) or (
        command == "quantize" and getattr(args, "list", False)
    ):
        return []
    out = getattr(args, "out", None) if command in ("baseline", "evaluate") else None
    root = Path(out) if out else workspace_of(args).root
    # the commands that make a workspace lock it before it exists; the others have nothing to
    # lock (and nothing to write: they stop at 'no baseline') in a folder that is not there
    return [root] if command in CREATORS or root.is_dir() else []


def _lock_workspaces(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    """Take the lock of each workspace the command writes (in one order: two commands locking
    the same pair cannot deadlock), then clear the temporary files killed writers left there."""
    from qbench.lock import WorkspaceLock
    from qbench.workspace import Workspace

    if not current().is_main:
        return  # a torchrun rank other than 0: rank 0 holds the lock and writes for all
    roots = {str(Path(p).resolve()): Path(p) for p in locked_workspaces(args)}
    command = shlex.join(["qbench", *args.argv])

    def waiting(holder) -> None:
        print(f"qbench {args.command}: waiting for {holder.describe()} to finish ...", file=sys.stderr)

    for key in sorted(roots):
        lock = WorkspaceLock(roots[key], command)
        lock.acquire(wait=getattr(args, "wait_lock", False), on_wait=waiting)
        stack.callback(lock.release)
        if lock.unsupported:
            print(f"qbench {args.command}: note: no workspace lock: {lock.unsupported}", file=sys.stderr)
        Workspace(roots[key]).remove_stale_temps()


def _refuse_distributed(args: argparse.Namespace) -> None:
    """Under torchrun with several processes only ``baseline --train`` is distributed; every
    other command would run N times over one workspace."""
    world = current().world_size
    training = args.command == "baseline" and not (args.import_path or args.evaluate)
    if world > 1 and not training:
        raise QBenchError(
            f"'qbench {args.command}' runs in one process, but torchrun started {world}; only "
            "'baseline --train' trains distributed: run this command without torchrun."
        )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # 'baseline --nproc N' relaunches it
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        _refuse_distributed(args)
        with contextlib.ExitStack() as stack:
            _lock_workspaces(args, stack)
            return int(args.func(args) or 0)
    except QBenchError as exc:
        print(f"qbench {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            f"qbench {args.command}: interrupted; finished records are kept, rerun to resume.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
