"""Imports every built-in exporter so that it registers itself (order = CLI order)."""

import importlib

BUILTIN = (
    "qbench.exporters.float_precision",
    "qbench.exporters.int8_ptq",
    "qbench.exporters.int8_dynamic",
    "qbench.exporters.qat",
    "qbench.exporters.onnx_export",
    "qbench.exporters.tensorrt_export",
)

for _name in BUILTIN:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # not written yet / removed: only that module is absent
        if exc.name != _name:
            raise
