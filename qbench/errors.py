"""User-facing errors.

A QBenchError is a mistake the user can fix (bad flag, missing file, wrong checkpoint).
The CLI prints its message as one sentence without a traceback and exits with status 2.
"""


class QBenchError(Exception):
    """An error caused by user input; the message says what is wrong and how to fix it."""

    exit_code = 2


class BackendUnavailable(QBenchError):
    """A back-end (CUDA, TensorRT, ...) needed by a variant is not present on this machine."""
