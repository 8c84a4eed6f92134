"""Image and batch sizes: the bounds found on the meta device hold for the real models."""

from __future__ import annotations

import re

import pytest
import torch

from qbench.baselines import sizing
from qbench.baselines.models import create_model
from qbench.errors import QBenchError


def _runs(model: torch.nn.Module, size: int) -> bool:
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
        return True
    except RuntimeError:
        return False


@pytest.mark.parametrize("name", ["tiny-cnn", "alexnet-bn", "alexnet-paper"])
def test_accepted_sizes_are_those_the_real_model_takes(name):
    smallest, largest = sizing.accepted_sizes(name)
    model = create_model(name, num_classes=10).eval()
    assert _runs(model, smallest) and (smallest == 1 or not _runs(model, smallest - 1))
    if largest is not None:
        assert _runs(model, largest) and not _runs(model, largest + 1)
    assert (name == "alexnet-paper") == (largest is not None)  # adaptive pooling: no upper bound


@pytest.mark.parametrize("name, size", [("tiny-cnn", 32), ("resnet18", 64), ("alexnet-bn", 64)])
def test_the_training_estimate_is_a_lower_bound_of_what_autograd_keeps(name, size):
    """Tensors saved for backward (input, activations, weights) plus the gradients of the
    weights: at least what footprint() says a training step needs."""
    model, batch, saved = create_model(name, num_classes=10).train(), 4, {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return t

    x = torch.randn(batch, 3, size, size)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        torch.nn.functional.cross_entropy(model(x), torch.zeros(batch, dtype=torch.long))
    grads = 4 * sum(p.numel() for p in model.parameters())
    assert sum(saved.values()) + grads >= sizing.footprint(name, size, 10).train_bytes(batch)


def test_too_big_for_memory_names_the_largest_size_that_fits():
    fp = sizing.footprint("tiny-cnn", 64)
    available = max(fp.train_bytes(64), fp.infer_bytes(256))  # exactly enough at 64 px
    sizing.check_image_size("tiny-cnn", 64, 10, 64, 256, available=available)
    with pytest.raises(QBenchError) as err:
        sizing.check_image_size("tiny-cnn", 65, 10, 64, 256, available=available)
    suggested = int(re.search(r"pass --image-size (\d+) or less", str(err.value)).group(1))
    assert suggested == 64


def test_too_small_and_fixed_heads_name_the_sizes():
    with pytest.raises(QBenchError, match="pass --image-size 4 or more"):
        sizing.check_image_size("tiny-cnn", 3, 10, 8, 8, available=1 << 40)
    with pytest.raises(QBenchError, match="takes 227 to 258 px"):
        sizing.check_image_size("alexnet-paper", 259, 10, 8, 8, available=1 << 40)


def test_batch_sizes_beyond_memory():
    fp = sizing.footprint("tiny-cnn", 32)
    available = fp.infer_bytes(100)
    sizing.check_batch_sizes("tiny-cnn", 32, 10, [1, 100], available=available)
    with pytest.raises(
        QBenchError, match=r"--batch-sizes 101 needs at least .* keep --batch-sizes at 100 or less"
    ):
        sizing.check_batch_sizes("tiny-cnn", 32, 10, [1, 101], available=available)
