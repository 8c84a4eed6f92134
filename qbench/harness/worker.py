"""Bench one variant in this (fresh or freshly forked) process; run by qbench.harness.isolation.

    python -m qbench.harness.worker JOB.json [BENCH_PID]

JOB.json holds the workspace root, the mode, the BenchOptions, the baseline facts (ModelFacts),
the machine's EnvRecord (records as their ``to_dict``) and the path to write the BenchResult to.
Progress goes to stdout as ``QBENCH-PROGRESS <mode> <batch>`` lines. Modules named in
QBENCH_PLUGINS (comma-separated) are imported first, so runners and exporters from outside
qbench can register themselves. The fork server (qbench.harness.forkserver) calls
:func:`run_job` in each child it forks.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

PROGRESS_PREFIX = "QBENCH-PROGRESS"
FRESH_PROCESS = "fresh process"
FORKED_PROCESS = "fresh process (a child of the bench's fork server)"


def import_plugins() -> None:
    for name in filter(None, (p.strip() for p in os.environ.get("QBENCH_PLUGINS", "").split(","))):
        importlib.import_module(name)


def run_job(job: dict[str, Any], isolation: str = FRESH_PROCESS) -> int:
    """Bench the job's variant, write its BenchResult to ``job["out"]``; 1 when it failed."""
    from qbench.harness.sweep import bench_variant, failed_result
    from qbench.records import BenchOptions, EnvRecord, ModelFacts
    from qbench.workspace import Workspace

    options = BenchOptions.from_dict(job["options"])
    machine = None if job["machine"] is None else EnvRecord.from_dict(job["machine"])

    def progress(mode: str, batch_size: int) -> None:
        print(f"{PROGRESS_PREFIX} {mode} {batch_size}", flush=True)

    try:
        import_plugins()
        result = bench_variant(
            Workspace(Path(job["workspace"])),
            job["mode"],
            options,
            facts=ModelFacts.from_dict(job["facts"]),
            meta=job["meta"],
            machine=machine,
            with_accuracy=job["with_accuracy"],
            progress=progress,
        )
    except Exception as exc:  # any failure of the variant becomes its 'failed' record
        result = failed_result(job["mode"], options, exc)
    result.settings.isolation = isolation
    result.save_json(Path(job["out"]))
    return 0 if result.status != "failed" else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m qbench.harness.worker JOB [BENCH_PID]``: with the pid, die with that bench."""
    args = argv or sys.argv[1:]
    if len(args) > 1:
        from qbench.harness.forkserver import die_with_parent

        die_with_parent(int(args[1]))
    job = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
