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

    from qbench import env, pipeline

    record = env.capture()
    if args.json:
        print(json.dumps(record.to_dict(), indent=2))
        return 0
    out = Console()
    cpu = record.cpu
    out.print(f"[bold]CPU[/bold]      {cpu.model} ({cpu.logical_cores} logical cores)")
    out.print(
        "[bold]flags[/bold]    " + "  ".join(f"{k}={'yes' if v else 'no'}" for k, v in cpu.flags.items())
    )
    out.print(f"[bold]RAM[/bold]      {_gib(cpu.ram_gb)}")
    out.print(
        f"[bold]threads[/bold]  torch intra-op {record.torch_threads}, inter-op {record.torch_interop_threads}"
    )
    for line in precision_lines():
        out.print(line, markup=False)
    gpus = "; ".join(g.name for g in record.gpus) if record.gpus else "none (no CUDA device)"
    out.print(f"[bold]GPU[/bold]      {gpus}")
    out.print(f"[bold]python[/bold]   {record.python}   [bold]platform[/bold] {record.platform}")
    out.print("[bold]libraries[/bold] " + ", ".join(f"{k} {v}" for k, v in record.libraries.items() if v))
    table = Table(title="conversion modes on this machine")
    table.add_column("mode")
    table.add_column("status")
    for mode, reason in pipeline.runnable_modes().items():
        table.add_row(
            mode, "[green]runs here[/green]" if reason is None else f"[yellow]skipped: {reason}[/yellow]"
        )
    out.print(table)
    return 0


def precision_lines() -> list[str]:
    """'fp16 arithmetic: native (avx512_fp16)' or 'fp16 arithmetic: emulated: ...', per reduced precision."""
    from qbench import capabilities

    family = capabilities.cpu_family()
    lines = []
    for precision, flags in capabilities.NATIVE_ARITHMETIC.get(family or "", {}).items():
        reason = capabilities.emulated(precision)
        native = [f for f in flags if f in capabilities.cpu_flags()]
        state = reason or f"native ({', '.join(native)})"
        lines.append(f"{precision:<9}arithmetic on the CPU: {state}")
    return lines


def _gib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} GiB"
