"""retained_heap: inside it, the training steps of a model with large layers fault no pages in
again (their gradients and activations reuse freed heap blocks); outside it, and after it, glibc's
usual policy maps each large block afresh."""

from __future__ import annotations

import resource

import pytest
import torch
from torch import nn

from qbench.allocator import _glibc, retained_heap

pytestmark = pytest.mark.skipif(_glibc() is None, reason="not glibc: retained_heap does nothing here")


def _faults_per_step(model: nn.Module, optimizer, steps: int = 4) -> float:
    x = torch.randn(32, 4096)
    for _ in range(2):  # first steps create the optimizer state
        _step(model, optimizer, x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        _step(model, optimizer, x)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps


def _step(model: nn.Module, optimizer, x: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)  # frees the gradients, as the trainer does
    model(x).square().mean().backward()
    optimizer.step()


def test_training_steps_reuse_freed_memory_inside_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 4096))  # 64 MiB gradients each
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    gradient_pages = 2 * 4096 * 4096 * 4 // resource.getpagesize()
    outside = _faults_per_step(model, optimizer)
    with retained_heap() as active:
        assert active is True
        inside = _faults_per_step(model, optimizer)
    after = _faults_per_step(model, optimizer)
    assert outside >= gradient_pages, (outside, inside)  # each step maps its gradients afresh
    assert inside <= gradient_pages / 4, (outside, inside)  # and inside it, reuses them
    assert after >= gradient_pages  # the usual policy is back
