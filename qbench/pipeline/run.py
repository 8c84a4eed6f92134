"""The whole pipeline (baseline -> quantize -> bench -> report), skipping up-to-date steps.

A step's output is up to date when its record says it was made from what this run asks for
(qbench.pipeline.staleness: model, data, settings, checksums, qbench version) and it did not
fail; so an interrupted run resumes where it stopped, a run with other settings redoes what
they change and says why, and ``force`` redoes everything.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qbench.baselines.request import BaselineRequest
from qbench.pipeline.baseline import baseline, made_how
from qbench.pipeline.bench import bench, check_device
from qbench.pipeline.compare import compare
from qbench.pipeline.quantize import REFERENCE_MODE, describe, quantize, resolve_modes
from qbench.pipeline.staleness import (
    baseline_staleness,
    stale_results,
    stale_variants,
    stored_baseline,
)
from qbench.records import (
    BenchOptions,
    BenchResult,
    QuantizeOptions,
    TrainRecord,
    VariantRecord,
)
from qbench.workspace import Workspace

__all__ = [
    "RunHooks",
    "RunOptions",
    "RunOutcome",
    "run",
]

# QAT on the whole training split would dominate a default run: cap it, and say so
RUN_QAT_MAX_BATCHES = 10
# a default run bounds each batch size's timing by this budget where 100 iterations would take
# longer (slow or emulated variants); every record says how many iterations it holds and why
RUN_MAX_SECONDS_PER_BATCH = 2.0


@dataclass
class RunOptions:
    modes: list[str] = field(default_factory=lambda: ["all"])
    quantize: QuantizeOptions = field(
        default_factory=lambda: QuantizeOptions(qat_max_batches=RUN_QAT_MAX_BATCHES)
    )
    bench: BenchOptions = field(
        default_factory=lambda: BenchOptions(
            max_seconds_per_batch=RUN_MAX_SECONDS_PER_BATCH, profile=True, profile_emulated=False
        )
    )
    formats: list[str] = field(default_factory=lambda: ["text", "html"])
    force: bool = False


def _ignore(_: Any) -> None:
    return None


@dataclass
class RunHooks:
    """How a run reports back: step titles, one-line notes, the bench results, progress bars."""

    step: Callable[[str], None] = _ignore
    note: Callable[[str], None] = _ignore
    results: Callable[[list[BenchResult]], None] = _ignore
    # a context manager yielding a rich Progress (or None) for one step's long work
    progress: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext


@dataclass
class RunOutcome:
    train: TrainRecord
    trained: bool  # False: the stored baseline was up to date
    converted: list[VariantRecord]  # the variants converted by this run
    results: list[BenchResult]  # of every requested mode, fresh or up to date
    reports: dict[str, list[Path]]


# not worth a line each: made for the first time, or redone because the user asked
OBVIOUS = ("no baseline yet", "not converted yet", "not benched yet", "--force")


def _redo_notes(hooks: RunHooks, step: str, why: dict[str, str]) -> None:
    """One line per redone item whose reason is more than 'not made yet'."""
    for name, reason in why.items():
        if reason not in OBVIOUS:
            hooks.note(f"  {step} {name} again: {reason}")


def run(
    ws: Workspace, request: BaselineRequest, options: RunOptions | None = None, hooks: RunHooks | None = None
) -> RunOutcome:
    options = options or RunOptions()
    hooks = hooks or RunHooks()
    # validate every option before the long steps start
    modes = resolve_modes(options.modes)
    check_device(options.bench.device)

    hooks.step(f"1/4 baseline -> {ws.baseline_dir}")
    why = "--force" if options.force else baseline_staleness(ws, request)
    train = None if why else stored_baseline(ws)
    trained = train is None
    if train is None:
        _redo_notes(hooks, "make the", {"baseline": why or "no baseline yet"})
        with hooks.progress() as bar:
            train = baseline(ws, request, progress=bar)
        hooks.note(f"{made_how(train)}: test top-1 {train.test.top1:.2f}%")
    else:
        hooks.note("baseline is up to date (use --force to retrain)")

    hooks.step("2/4 quantize")
    qopts = options.quantize
    redo = dict.fromkeys(modes, "--force") if options.force else stale_variants(ws, modes, qopts)
    todo = [m for m in modes if m in redo]
    _redo_notes(hooks, "convert", redo)
    if qopts.qat_max_batches and "qat" in todo:
        hooks.note(
            f"QAT: {qopts.qat_epochs} epoch(s) of at most {qopts.qat_max_batches} batches "
            "(raise --qat-max-batches for more)"
        )
    converted: list[VariantRecord] = []
    if todo:
        with hooks.progress() as bar:
            converted = quantize(ws, todo, qopts, progress=bar)
        for record in converted:
            hooks.note(f"  {describe(record)}")
    if kept := [m for m in modes if m not in todo]:
        hooks.note(f"variants up to date: {', '.join(kept)}")

    hooks.step("3/4 bench")
    made = [m for m in ws.variant_modes() if m in modes]
    redo = dict.fromkeys(made, "--force") if options.force else stale_results(ws, modes, options.bench)
    stale = [m for m in made if m in redo]
    _redo_notes(hooks, "bench", redo)
    fresh: dict[str, BenchResult] = {}
    if stale:
        budget = options.bench.max_seconds_per_batch
        hooks.note(
            f"bench: {len(stale)} variant(s) x {len(options.bench.batch_sizes)} batch sizes; "
            + (
                f"at most {budget:g} s of timing per batch size once 10 iterations are in"
                if budget
                else "no time budget"
            )
            + " (the bar's estimate of the time left is the run's, less the report)"
        )
        with hooks.progress() as bar:
            fresh = {r.mode: r for r in bench(ws, dataclasses.replace(options.bench, variants=stale), bar)}
    # this run's records (a failure included, though a good earlier record stays on disk), then the rest
    stored = [BenchResult.from_json(p) for p in ws.result_paths() if p.stem in modes and p.stem not in fresh]
    results = sorted([*fresh.values(), *stored], key=lambda r: (r.mode != REFERENCE_MODE, r.mode))
    hooks.results(results)

    hooks.step("4/4 report")
    reports = compare(ws, options.formats)
    return RunOutcome(train=train, trained=trained, converted=converted, results=results, reports=reports)
