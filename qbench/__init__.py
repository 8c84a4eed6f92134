"""qbench: quantization and deployment benchmarking for image classifiers.

Importing qbench is cheap on purpose: no torch extension, onnxruntime or tensorrt is
loaded and CUDA is never initialized here. Heavy modules are imported where used.
"""

__version__ = "0.1.0"

__all__ = ["QBenchError", "__version__"]

import logging as _logging

from qbench.errors import QBenchError


def _quiet_torchao_enum_notice(record: _logging.LogRecord) -> bool:
    """torch tells, once per import of torchao, that torchao registers an Enum in a way it calls
    deprecated: a notice for torchao's developers, not for qbench's users."""
    return "is an Enum subclass and is now natively supported" not in record.getMessage()


_logging.getLogger("torch.utils._pytree").addFilter(_quiet_torchao_enum_notice)
