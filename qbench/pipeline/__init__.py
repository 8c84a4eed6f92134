"""The library API: baseline, quantize, bench, compare and run on a workspace.

The command line parses flags into the config records (``qbench.records``) and calls these;
a script or notebook can call them the same way::

    from qbench import pipeline
    from qbench.records import BenchOptions, QuantizeOptions

    pipeline.quantize(ws, ["int8-ptq"], QuantizeOptions(calib_batches=4))
    results = pipeline.bench(ws, BenchOptions(batch_sizes=[1, 64]))

Each function imports the heavy libraries it needs when called, so importing this package
stays cheap.
"""

from qbench.pipeline.baseline import BaselineRequest, baseline, evaluate_baseline, launch_distributed
from qbench.pipeline.bench import bench, select_modes
from qbench.pipeline.compare import compare
from qbench.pipeline.evaluate import evaluate
from qbench.pipeline.quantize import describe, ensure_fp32, quantize, resolve_modes, runnable_modes
from qbench.pipeline.run import RunHooks, RunOptions, RunOutcome, run

__all__ = [
    "BaselineRequest",
    "RunHooks",
    "RunOptions",
    "RunOutcome",
    "baseline",
    "bench",
    "compare",
    "describe",
    "ensure_fp32",
    "evaluate",
    "evaluate_baseline",
    "launch_distributed",
    "quantize",
    "resolve_modes",
    "run",
    "runnable_modes",
    "select_modes",
]
