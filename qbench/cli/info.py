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
    p.add_argument(
        "--limits",
        action="store_true",
        help="print this machine's measured memory bandwidth and matmul peaks (measured once per machine "
        "fingerprint, about 10-20 s, then cached)",
    )
    p.add_argument(
        "--remeasure", action="store_true", help="with --limits: measure again instead of using the cache"
    )
    p.add_argument(
        "--threads", type=int, help="with --limits: intra-op threads to measure with (default: torch's)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from qbench import env, pipeline

    if args.limits or args.remeasure:
        return print_limits(args)
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


def print_limits(args: argparse.Namespace) -> int:
    """The cached (or now measured) limits of this machine with the method of each number."""
    import torch
    from rich.console import Console

    from qbench import env
    from qbench.errors import QBenchError
    from qbench.harness import limits as machine_limits
    from qbench.reports.roofline import device_limit_lines

    if args.threads is not None:
        if args.threads < 1:
            raise QBenchError("--threads must be 1 or more; pass the intra-op thread count to measure with.")
        torch.set_num_threads(args.threads)
    out = Console(stderr=args.json)
    machine = env.capture()
    if args.remeasure or machine_limits.load_cached(machine.fingerprint()) is None:
        out.print("measuring this machine's limits (about 10-20 s) ...", markup=False)
    limits, measured_now = machine_limits.obtain(machine, remeasure=args.remeasure)
    if args.json:
        print(json.dumps(limits.to_dict(), indent=2))
        return 0
    where = machine_limits.cache_path(limits.fingerprint)
    state = (
        f"measured now in {limits.seconds:.1f} s" if measured_now else f"cached, measured {limits.measured}"
    )
    out.print(f"[bold]machine[/bold]  {limits.machine} (fingerprint {limits.fingerprint})")
    out.print(f"[bold]limits[/bold]   {state}; {where}", soft_wrap=True)
    for device in [limits.cpu, *limits.gpus]:
        out.print(f"[bold]{device.device}[/bold]: {device.name}")
        for line in device_limit_lines(device):
            out.print("  " + line, markup=False, soft_wrap=True)
    if not measured_now:
        out.print("(qbench info --limits --remeasure measures again)", markup=False)
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
