"""Imports every built-in runner so that it registers itself."""

import qbench.runners.torch_runner  # noqa: F401

for _optional in ("qbench.runners.onnxruntime_runner", "qbench.runners.tensorrt_runner"):
    try:
        __import__(_optional)
    except ModuleNotFoundError as exc:  # the module itself is missing, not its back-end
        if exc.name != _optional:
            raise
