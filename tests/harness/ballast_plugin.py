"""A test runner registered through QBENCH_PLUGINS: it allocates a ballast buffer in load()
and leaks it (as allocator and primitive caches do), or dies hard when asked to."""

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
        if self.variant.get("die"):
            print("ballast: simulated hard crash in load", file=sys.stderr, flush=True)
            os._exit(7)
        megabytes = int(self.variant.get("ballast_mb", 0))
        if megabytes:
            LEAKED.append(np.ones(megabytes * 2**20 // 8))
        self.num_classes = int(self.variant.get("num_classes", 10))

    def infer(self, native_input: torch.Tensor) -> torch.Tensor:
        return torch.zeros(native_input.shape[0], self.num_classes)
