"""qbench: quantization and deployment benchmarking for image classifiers.

Importing qbench is cheap on purpose: no torch extension, onnxruntime or tensorrt is
loaded and CUDA is never initialized here. Heavy modules are imported where used.
"""

__version__ = "0.1.0"

__all__ = ["QBenchError", "__version__"]

from qbench.errors import QBenchError
