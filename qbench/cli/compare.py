"""qbench compare: render reports from one or several workspaces (or result files)."""

from __future__ import annotations

import argparse
from pathlib import Path

from qbench.cli.common import EXPERIMENT, RUNS_DIR, add_workspace_args, workspace_of


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "compare",
        help="render comparison reports (HTML, Markdown, text, LaTeX, CSV, JSON) from benchmark results",
        description=(
            "Render reports from results/<mode>.json records. With SOURCES (workspace folders or result "
            "files) those are compared side by side, labelled by machine; add --exp/--runs-dir to put "
            "that workspace first."
        ),
    )
    parser.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="workspace folders (runs/<exp>) or results/<mode>.json files to compare side by side",
    )
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        dest="extra_sources",
        metavar="SOURCE",
        help="another source to compare (repeatable; same as a positional SOURCE)",
    )
    parser.add_argument(
        "--report",
        default="html",
        metavar="FORMATS",
        help="html, md, text, latex, csv, json or all; comma-separated for several (default: html)",
    )
    parser.add_argument(
        "--templates",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of *.j2 templates that take precedence over qbench's own (same file names)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output folder (default: the workspace's reports/; runs/compare/ for several sources)",
    )
    parser.add_argument("--title", default=None, help="report title (default: from the model name)")
    add_workspace_args(parser)
    # None = not given, so 'qbench compare runs/a runs/b' compares only a and b
    parser.set_defaults(func=run, runs_dir=None, exp=None)
    return parser


def run(args: argparse.Namespace) -> int:
    from qbench import pipeline

    extra = [Path(s) for s in [*args.sources, *args.extra_sources]]
    workspace_given = args.runs_dir is not None or args.exp is not None
    args.runs_dir = args.runs_dir or RUNS_DIR
    args.exp = args.exp or EXPERIMENT
    sources: list = []
    if workspace_given or not extra:
        sources.append(workspace_of(args))
    sources.extend(extra)
    out = args.out
    if out is None and len(sources) > 1:
        out = Path(args.runs_dir) / "compare"
    written = pipeline.compare(sources, args.report, out, templates_dir=args.templates, title=args.title)
    for kind, paths in written.items():
        if kind == "figures":
            print(f"figures: {len(paths)} files in {paths[0].parent}" if paths else "figures: none")
            continue
        for path in paths:
            print(path)
    return 0
