"""The whole pipeline (baseline -> quantize -> bench -> report), skipping up-to-date steps.

A step's output is up to date when it is newer than its input (a variant newer than the
baseline, a result newer than its variant), its record reads with this qbench, and it did
not fail; so an interrupted run resumes where it stopped, and ``force`` redoes everything.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qbench.baselines.request import BaselineRequest
from qbench.errors import QBenchError
from qbench.pipeline.baseline import baseline, made_how
from qbench.pipeline.bench import bench, check_device
from qbench.pipeline.compare import compare
from qbench.pipeline.quantize import describe, quantize, resolve_modes
from qbench.records import (
    BenchOptions,
    BenchResult,
    QuantizeOptions,
    TrainRecord,
    VariantRecord,
)
from qbench.workspace import Workspace

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
        default_factory=lambda: BenchOptions(max_seconds_per_batch=RUN_MAX_SECONDS_PER_BATCH)
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


def _newer(path: Path, than: Path) -> bool:
    return path.is_file() and than.is_file() and path.stat().st_mtime >= than.stat().st_mtime


def _usable(path: Path, kind: type[VariantRecord] | type[BenchResult]) -> bool:
    """A record that reads with this qbench and did not fail; else its step is redone."""
    try:
        return kind.from_json(path).status != "failed"
    except QBenchError:  # unreadable: corrupt, or written by another schema
        return False


def stored_baseline(ws: Workspace) -> TrainRecord | None:
    """The workspace's training record when model.pt is there and the record reads, else None."""
    if not ws.model_path.is_file():
        return None
    try:
        return TrainRecord.from_json(ws.train_json)
    except QBenchError:
        return None


def stale_variants(ws: Workspace, modes: list[str]) -> list[str]:
    """Modes whose variant is missing, older than the baseline, unreadable or failed."""
    return [
        m
        for m in modes
        if not _newer(ws.variant_json(m), ws.model_path) or not _usable(ws.variant_json(m), VariantRecord)
    ]


def stale_results(ws: Workspace, modes: list[str]) -> list[str]:
    """Variants (of ``modes``) whose result is missing, older than the variant, unreadable or failed."""
    return [
        m
        for m in ws.variant_modes()
        if m in modes
        and (not _newer(ws.result_path(m), ws.variant_json(m)) or not _usable(ws.result_path(m), BenchResult))
    ]


def run(
    ws: Workspace, request: BaselineRequest, options: RunOptions | None = None, hooks: RunHooks | None = None
) -> RunOutcome:
    options = options or RunOptions()
    hooks = hooks or RunHooks()
    # validate every option before the long steps start
    modes = resolve_modes(options.modes)
    check_device(options.bench.device)

    hooks.step(f"1/4 baseline -> {ws.baseline_dir}")
    train = None if options.force else stored_baseline(ws)
    trained = train is None
    if train is None:
        with hooks.progress() as bar:
            train = baseline(ws, request, progress=bar)
        hooks.note(f"{made_how(train)}: test top-1 {train.test.top1:.2f}%")
    else:
        hooks.note("baseline is up to date (use --force to retrain)")

    hooks.step("2/4 quantize")
    todo = modes if options.force else stale_variants(ws, modes)
    qopts = options.quantize
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
    hooks.note(f"variants up to date: {', '.join(m for m in modes if m not in todo) or 'none'}")

    hooks.step("3/4 bench")
    stale = [m for m in ws.variant_modes() if m in modes] if options.force else stale_results(ws, modes)
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
            bench(ws, dataclasses.replace(options.bench, variants=stale), bar)
    results = [BenchResult.from_json(p) for p in ws.result_paths() if p.stem in modes]
    hooks.results(results)

    hooks.step("4/4 report")
    reports = compare(ws, options.formats)
    return RunOutcome(train=train, trained=trained, converted=converted, results=results, reports=reports)
