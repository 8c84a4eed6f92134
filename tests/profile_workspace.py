"""A tiny workspace benched with per-layer profiles, built once per test process.

fp32 (torch eager), int8-ptq (torch.ao eager, x86 engine), onnx and onnx-int8 (ONNX Runtime)
of the tiny-cnn baseline, benched with ``profile=True`` at batch 1 and 4. The harness and the
report tests read it (read-only); it is built once per process because converting and
benching is the slow part.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PROFILED_MODES = ["fp32", "int8-ptq", "onnx", "onnx-int8"]
BATCH_SIZES = [1, 4]
_BUILT: dict[str, Path] = {}


def profiled_workspace(tiny_baseline_root: Path, tmp_path_factory) -> Path:
    """The root of the profiled workspace (copy it before writing to it)."""
    if "root" not in _BUILT:
        from qbench.pipeline.bench import bench
        from qbench.pipeline.quantize import quantize
        from qbench.records import BenchOptions, QuantizeOptions
        from qbench.workspace import Workspace

        root = tmp_path_factory.mktemp("profiled") / "default"
        shutil.copytree(tiny_baseline_root, root)
        ws = Workspace(root)
        quantize(ws, PROFILED_MODES[1:], QuantizeOptions(calib_batches=2, calib_batch_size=32, engine="x86"))
        options = BenchOptions(
            batch_sizes=BATCH_SIZES,
            warmup=2,
            iters=10,
            threads=1,
            accuracy=False,
            isolate=False,
            profile=True,
        )
        bench(ws, options)
        _BUILT["root"] = root
    return _BUILT["root"]
