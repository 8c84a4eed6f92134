"""CUDA-graph capture of one batch size's call (``qbench bench --cuda-graph``): the launches of a
whole forward pass recorded once and replayed with one call, as trtexec's ``--useCudaGraph``
does, so per-kernel launch overhead leaves the host latency.

A captured call reads a static input buffer and writes static outputs: the runner copies each
batch into the buffer before replaying (the copy is outside the timed call, like ``prepare``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

# eager calls before capture: lazy initialisation (cuDNN/cuBLAS handles, TensorRT's shape-dependent
# set-up, autotuning) must not happen inside the capture
WARMUP_CALLS = 3


@dataclass
class CapturedCall:
    """A forward pass captured for one input shape; ``replay`` runs it on the current stream."""

    graph: torch.cuda.CUDAGraph
    input: torch.Tensor  # the static buffer the graph reads
    output: Any  # the static output(s) the graph writes, valid after replay and a synchronize

    def replay(self) -> Any:
        self.graph.replay()
        return self.output


def capture(
    call: Callable[[torch.Tensor], Any], static_input: torch.Tensor, stream: torch.cuda.Stream
) -> CapturedCall:
    """Warm ``call`` up on ``stream``, then capture ``call(static_input)`` into a CUDA graph there.

    Capture mode "thread_local": a CUDA call another thread makes meanwhile (the NVML sampler's
    memory queries) neither breaks the capture nor joins it."""
    with torch.cuda.stream(stream):
        for _ in range(WARMUP_CALLS):
            call(static_input)
    stream.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
        output = call(static_input)
    stream.synchronize()
    return CapturedCall(graph, static_input, output)
