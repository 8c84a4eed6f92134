"""Entry point of the ``qbench`` console script."""

from __future__ import annotations

import argparse
import importlib
import sys

from qbench import __version__
from qbench.errors import QBenchError

# order = the order in `qbench --help`, the order of the pipeline
SUBCOMMANDS = ("baseline", "evaluate", "quantize", "bench", "compare", "regress", "run", "info", "recipes")


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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # 'baseline --nproc N' relaunches it
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
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
