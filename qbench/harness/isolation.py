"""Run the bench of every variant, each in a fresh process, R times interleaved.

A fresh process per variant keeps one variant's allocations (allocator caches, oneDNN
primitive caches, ORT arenas) out of the next one's memory and latency numbers. The processes
are children of one fork server (qbench.harness.forkserver) that imported torch and built the
test split once, so a variant does not pay the start-up again; without ``os.fork`` each is a
new ``python -m qbench.harness.worker``. With
``--repeats R`` the whole sweep runs R times in the order v1, v2, ..., v1, v2, ... so a slow
period of the machine hits every variant alike; the record keeps the median of the R run
medians and each run's median (``LatencyStats.repeats``).

Each variant's record is written as soon as it is measured, and again after each later repeat
(merged so far), so a kill loses at most the variant in progress: a record with fewer
``settings.repeats_done`` than asked for says how far it got. Records go through
:meth:`Workspace.save_result`, so a failed bench never replaces a good record.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qbench import lock
from qbench.harness import efficiency, forkserver, roofline, stats
from qbench.harness.forkserver import ForkServer
from qbench.harness.sweep import baseline_info, bench_variant, failed_result
from qbench.harness.worker import PROGRESS_PREFIX
from qbench.records import BenchOptions, BenchResult, EnvRecord, ModelFacts
from qbench.records.io import pid_alive
from qbench.workspace import Workspace

ERROR_TAIL_LINES = 15
NOT_ISOLATED = "none (--no-isolate): memory numbers include earlier variants"
# called as on_batch(mode, batch_size) after each measured batch size
BatchFn = Callable[[str, int], None]
# a job's folder in the temp dir: qbench-<pid of the bench>-<mode>-<random>, removed by the next
# bench once that process is gone (a killed bench cannot remove its own)
_JOB_DIR = re.compile(r"^qbench-(?P<pid>\d+)-")


def job_dir(mode: str) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=f"qbench-{os.getpid()}-{mode}-")


def remove_stale_job_dirs() -> None:
    """Delete the job folders of benches that were killed (their process is gone)."""
    for folder in Path(tempfile.gettempdir()).glob("qbench-*-*"):
        match = _JOB_DIR.match(folder.name)
        if match and folder.is_dir() and not pid_alive(int(match["pid"])):
            shutil.rmtree(folder, ignore_errors=True)


def run_isolated(
    ws: Workspace,
    mode: str,
    options: BenchOptions,
    *,
    facts: ModelFacts,
    meta: dict[str, Any],
    with_accuracy: bool,
    machine: EnvRecord | None = None,
    on_batch: BatchFn | None = None,
    server: ForkServer | None = None,
) -> BenchResult:
    """One variant in a fresh process: a child of ``server`` (a fork server), else a new
    ``python -m qbench.harness.worker`` process.

    The job goes over as plain JSON (records as their ``to_dict``); the worker's answer is a
    BenchResult file, read back through the record so a malformed one is refused.
    """
    with job_dir(mode) as tmp:
        job_path, out = Path(tmp) / "job.json", Path(tmp) / "result.json"
        stderr_path = Path(tmp) / "stderr.txt"
        job = {
            "workspace": str(ws.root.resolve()),
            "mode": mode,
            "options": options.to_dict(),
            "facts": facts.to_dict(),
            "meta": meta,
            "machine": None if machine is None else machine.to_dict(),
            "with_accuracy": with_accuracy,
            "out": str(out),
        }
        job_path.write_text(json.dumps(job), encoding="utf-8")
        stdout_tail: list[str] = []

        def on_line(line: str) -> None:
            nonlocal stdout_tail
            parts = line.split()
            if line.startswith(PROGRESS_PREFIX):
                if on_batch and len(parts) == 3:
                    on_batch(parts[1], int(parts[2]))
            else:
                stdout_tail = [*stdout_tail[-ERROR_TAIL_LINES:], line.rstrip()]

        code = server.run(job_path, on_line) if server else _fresh_process(job_path, stderr_path, on_line)
        if out.is_file():
            return BenchResult.from_json(out)
        tail = stderr_path.read_text(encoding="utf-8", errors="replace") if stderr_path.is_file() else ""
        if code is None and server is not None:
            tail += "\n" + server.last_error
        lines = (tail.strip().splitlines() or stdout_tail)[-ERROR_TAIL_LINES:]
        why = f"the worker process exited with status {code} without a result"
        if code is None:
            why = "the bench's fork server died without a result"
        return failed_result(mode, options, "\n".join([*lines, why]))


def _fresh_process(job_path: Path, stderr_path: Path, on_line: Callable[[str], None]) -> int:
    with open(stderr_path, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(
            # with the bench's pid: the worker dies with the bench (forkserver.die_with_parent)
            [sys.executable, "-m", "qbench.harness.worker", str(job_path), str(os.getpid())],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            pass_fds=lock.held_fds(),  # the workspace stays locked while the worker may write to it
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            on_line(line)
        return proc.wait()


def merge(results: list[BenchResult], options: BenchOptions) -> BenchResult:
    """Fold R repeats of one variant into one record (accuracy and memory from the first); the
    records given are left as they are, so the repeats so far can be merged after each one."""
    first = results[0]
    ok = [r for r in results if r.ok]
    if not first.ok or len(ok) < 2:
        return first
    merged = copy.deepcopy(first)
    merged.latency = [
        stats.merge_repeats([r.latency_at(s.batch_size) for r in ok], options.cv_threshold)
        for s in first.latency
    ]
    assert merged.model is not None and merged.variant is not None  # bench_variant sets both when ok
    merged.efficiency = efficiency.annotate(merged.latency, merged.model.flops, merged.variant.ops_unit)
    roofline.refresh(merged)  # its points follow the merged latencies
    merged.settings.repeats_done = len(ok)
    merged.settings.statistics = stats.conventions(repeats=len(ok))
    return merged


def bench_modes(
    ws: Workspace,
    modes: list[str],
    options: BenchOptions,
    *,
    on_batch: BatchFn | None = None,
    on_variant: Callable[[str, int, BenchResult], None] | None = None,
) -> list[BenchResult]:
    """Bench ``modes`` R times interleaved; return the merged records.

    Each variant's record (merged over the repeats so far) is written after each of its runs,
    through :meth:`Workspace.save_result` (a failure never replaces a good record).
    """
    from qbench import env

    remove_stale_job_dirs()
    # started first: its imports run while this process reads the baseline and the machine. Not
    # for a GPU: a CUDA context does not survive fork, so each variant gets a fresh interpreter
    forking = options.isolate and forkserver.available() and not options.device.startswith("cuda")
    server = ForkServer().start() if forking else None
    runs: dict[str, list[BenchResult]] = {m: [] for m in modes}
    merged: dict[str, BenchResult] = {}
    try:
        facts, meta = baseline_info(ws)
        machine = env.capture()
        for repeat in range(options.repeats):
            for mode in modes:
                if runs[mode] and not runs[mode][0].ok:
                    continue  # skipped or failed once: the same on every repeat
                with_accuracy = repeat == 0 and options.accuracy  # accuracy once per variant
                result = _one(ws, mode, options, facts, meta, machine, with_accuracy, on_batch, server)
                runs[mode].append(result)
                merged[mode] = _save_so_far(ws, runs[mode], options)
                if on_variant:
                    on_variant(mode, repeat, result)
    finally:
        if server is not None:
            server.close()
    return [merged[m] for m in modes if m in merged]


def _save_so_far(ws: Workspace, runs: list[BenchResult], options: BenchOptions) -> BenchResult:
    """Write a variant's record after each of its runs: the runs so far, merged. A later run that
    failed leaves the runs before it standing, with a note (the record's ``repeats_done`` is short)."""
    so_far = merge(runs, options)
    failures = [
        f"repeat {i + 1} of {options.repeats} {r.status}: {r.skip_reason or 'no reason recorded'}"
        for i, r in enumerate(runs)
        if i and not r.ok
    ]
    if failures:
        so_far = copy.deepcopy(so_far) if so_far is runs[0] else so_far
        so_far.notes += [
            *failures,
            f"this record merges the {so_far.settings.repeats_done} repeat(s) that finished",
        ]
    ws.save_result(so_far)
    return so_far


def _one(ws, mode, options, facts, meta, machine, with_accuracy, on_batch, server) -> BenchResult:
    common = {"facts": facts, "meta": meta, "machine": machine, "with_accuracy": with_accuracy}
    if options.isolate:
        return run_isolated(ws, mode, options, on_batch=on_batch, server=server, **common)
    try:
        result = bench_variant(ws, mode, options, progress=on_batch, **common)
    except Exception as exc:  # a crashing variant is recorded, the run goes on
        result = failed_result(mode, options, exc)
    result.settings.isolation = NOT_ISOLATED
    return result
