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


def preflight(args: argparse.Namespace, sources: list, out: Path | None) -> None:
    """Formats known, templates there and the report folder writable, before anything renders."""
    from qbench.preflight import require_readable_folder, require_writable_folder
    from qbench.reports.sources import load_source
    from qbench.reports.writers import parse_formats

    parse_formats(args.report)
    if args.templates is not None:
        require_readable_folder(args.templates, "--templates")
    if out is not None:
        require_writable_folder(out, "--out")
        return
    # one source: its workspace's reports/ (the folder load_source finds for a path)
    require_writable_folder(Path(load_source(sources[0]).root) / "reports", "--out")


def run(args: argparse.Namespace) -> int:
    from qbench import pipeline

    extra = [Path(s) for s in [*args.sources, *args.extra_sources]]
    workspace_given = args.runs_dir is not None or args.exp is not None
    # 'is None', not 'or': --exp '' is a mistake for workspace_of to name, not the default
    args.runs_dir = RUNS_DIR if args.runs_dir is None else args.runs_dir
    args.exp = EXPERIMENT if args.exp is None else args.exp
    sources: list = []
    if workspace_given or not extra:
        sources.append(workspace_of(args))
    sources.extend(extra)
    out = args.out
    if out is None and len(sources) > 1:
        out = Path(args.runs_dir) / "compare"
    preflight(args, sources, out)
    written = pipeline.compare(sources, args.report, out, templates_dir=args.templates, title=args.title)
    for kind, paths in written.items():
        if kind == "figures":
            print(f"figures: {len(paths)} files in {paths[0].parent}" if paths else "figures: none")
            continue
        for path in paths:
            print(path)
    return 0
