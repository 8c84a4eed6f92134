"""qbench recipes: the command that reproduces each reference document's setting."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "recipes",
        help="the qbench commands that reproduce each reference document",
        description="For each reference document (shared/reference/), its setting and the exact qbench "
        "commands that reproduce it. DATA: the folder of a data set torchvision does not download.",
    )
    p.add_argument("reference", nargs="?", help="one document's number, e.g. 004 (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from qbench.baselines.recipes import RECIPES
    from qbench.errors import QBenchError

    chosen = [r for r in RECIPES if args.reference in (None, r.reference)]
    if not chosen:
        raise QBenchError(
            f"no reference {args.reference!r}; pass one of: {', '.join(r.reference for r in RECIPES)}."
        )
    for recipe in chosen:
        print(f"# reference {recipe.reference}: {recipe.setting}")
        for command in recipe.commands:
            print(f"  {command}")
        print()
    return 0
