"""qbench info: the environment and which back-ends and modes can run on this machine."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "info",
        help="print the environment and the back-ends available here",
        description="CPU model and flags, threads, RAM, GPU, library versions, and which variants can run here.",
    )
    p.add_argument("--json", action="store_true", help="print the full environment record as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from qbench import env

    record = env.capture()
    if args.json:
        print(json.dumps(record, indent=2, default=str))
        return 0
    out = Console()
    cpu = record["cpu"]
    out.print(f"[bold]CPU[/bold]      {cpu.get('model')} ({cpu.get('logical_cores')} logical cores)")
    flags = cpu.get("flags") or {}
    out.print("[bold]flags[/bold]    " + "  ".join(f"{k}={'yes' if v else 'no'}" for k, v in flags.items()))
    out.print(f"[bold]RAM[/bold]      {cpu.get('ram_gb', 0):.1f} GiB")
    out.print(
        f"[bold]threads[/bold]  torch intra-op {record['torch_threads']}, inter-op {record['torch_interop_threads']}"
    )
    gpus = record.get("gpus") or []
    out.print(
        "[bold]GPU[/bold]      "
        + ("; ".join(g.get("name", "?") for g in gpus) if gpus else "none (no CUDA device)")
    )
    out.print(f"[bold]python[/bold]   {record['python']}   [bold]platform[/bold] {record['platform']}")
    libs = record.get("libraries") or {}
    out.print("[bold]libraries[/bold] " + ", ".join(f"{k} {v}" for k, v in libs.items() if v))
    table = Table(title="conversion modes on this machine")
    table.add_column("mode")
    table.add_column("status")
    for mode, reason in env.runnable_modes().items():
        table.add_row(
            mode, "[green]runs here[/green]" if reason is None else f"[yellow]skipped: {reason}[/yellow]"
        )
    out.print(table)
    return 0
