"""A test runner registered through QBENCH_PLUGINS: it allocates a ballast buffer in load()
and leaks it (as allocator and primitive caches do), or dies hard when asked to.

What to do comes from the variant record's format-specific ``details``: ``ballast_mb``, ``die``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

from qbench.runners.base import Runner, register_runner

LEAKED: list[np.ndarray] = []


@register_runner("ballast")
class BallastRunner(Runner):
    name = "ballast"

    def load(self) -> None:
        details = self.variant.details
        if details.get("die"):
            print("ballast: simulated hard crash in load", file=sys.stderr, flush=True)
            os._exit(7)
        megabytes = int(details.get("ballast_mb", 0))
        if megabytes:
            LEAKED.append(np.ones(megabytes * 2**20 // 8))
        self.num_classes = self.variant.baseline.num_classes

    def infer(self, native_input: torch.Tensor) -> torch.Tensor:
        return torch.zeros(native_input.shape[0], self.num_classes)
