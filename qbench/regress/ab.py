"""A/B in one job: two workspaces benched alternately on the same machine, then compared.

CI runners differ from job to job (CPU model, neighbours, frequency), so a baseline stored on
one runner says little about the next. Measuring main's workspace (A) and the pull request's
(B) in the same job, alternately, makes the machine the same for both sides: run r benches A
then B, run r + 1 benches B then A (ABBA, so a machine that drifts steadily over the job
favours neither side). Each run is a whole ``bench_modes`` call with ``repeats=1`` (every
variant in a fresh process); the harness interleaves repeats within one workspace only, so
the interleaving across workspaces is done here, a run at a time. The R records of a variant
are folded with the harness's own ``merge`` (median of run medians, each run's median kept in
``LatencyStats.repeats``) and written to each workspace's results/.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from qbench.errors import QBenchError
from qbench.records import BenchOptions, BenchResult
from qbench.regress.results import ResultSet
from qbench.workspace import Workspace

DEFAULT_AB_REPEATS = 5  # runs a side: enough for the bootstrap to separate a real slowdown

# called after each run of one side: on_run(side "A" or "B", run index, that run's records)
RunFn = Callable[[str, int, list[BenchResult]], None]


def bench_ab(
    ws_a: Workspace,
    ws_b: Workspace,
    modes: dict[str, list[str]],
    options: BenchOptions,
    on_run: RunFn | None = None,
) -> tuple[ResultSet, ResultSet]:
    """Bench ``modes["A"]`` of ``ws_a`` and ``modes["B"]`` of ``ws_b`` ``options.repeats`` times, ABBA."""
    from qbench.harness.isolation import bench_modes, merge

    if ws_a.root.resolve() == ws_b.root.resolve():
        raise QBenchError(f"--ab got the same workspace twice ({ws_a.root}); pass main's and the change's.")
    workspaces = {"A": ws_a, "B": ws_b}
    runs: dict[str, dict[str, list[BenchResult]]] = {s: {m: [] for m in modes[s]} for s in workspaces}
    for repeat in range(options.repeats):
        for side in ("A", "B") if repeat % 2 == 0 else ("B", "A"):
            # accuracy once (the first run), as 'bench --repeats' does; a variant that failed or was
            # skipped once is not run again
            todo = [m for m, done in runs[side].items() if not done or done[0].ok]
            one = dataclasses.replace(options, repeats=1, accuracy=options.accuracy and repeat == 0)
            results = bench_modes(workspaces[side], todo, one) if todo else []
            for result in results:
                runs[side][result.mode].append(result)
            if on_run:
                on_run(side, repeat, results)
    sets = []
    for side, ws in workspaces.items():
        merged = {}
        for mode, records in runs[side].items():
            result = merge(records, options)
            ws.save_result(result)
            merged[mode] = result
        sets.append(ResultSet(str(ws.root), merged))
    return sets[0], sets[1]
