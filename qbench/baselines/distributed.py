"""Distributed data-parallel training on PyTorch's own engine (torchrun + DDP).

``torchrun --nproc-per-node N -m qbench baseline --train ...`` starts N processes; torchrun
sets RANK, LOCAL_RANK and WORLD_SIZE, and :func:`session` joins them into one process group
(NCCL on GPUs, gloo on CPUs). Without those variables (or with WORLD_SIZE 1) training is the
one-process loop, unchanged. Rank 0 alone writes files.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qbench.errors import QBenchError

if TYPE_CHECKING:  # torch is imported where it is used: the CLI reads current() before any import
    import torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def reduce_sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over all ranks (the values themselves in one process)."""
        if not self.enabled:
            return values
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, obj):
        """Every rank's ``obj``, in rank order."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def launched_world_size() -> int:
    """WORLD_SIZE as torchrun set it; 1 outside torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def current() -> Dist:
    """This process's place, from torchrun's variables (no process group is needed to read it)."""
    return Dist(
        rank=int(os.environ.get("RANK", "0")),
        world_size=launched_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


@contextlib.contextmanager
def session(device: str) -> Iterator[Dist]:
    """Joins the torchrun process group for the duration of training; yields this process's
    place and the device it trains on (``cuda:LOCAL_RANK`` for --device cuda)."""
    place = current()
    if not place.enabled:
        yield Dist(device=device)
        return
    import torch
    import torch.distributed as dist

    cuda = device.startswith("cuda")
    if cuda:
        if torch.cuda.device_count() <= place.local_rank:
            raise QBenchError(
                f"rank {place.rank} needs GPU {place.local_rank} but this node has "
                f"{torch.cuda.device_count()}; pass --nproc-per-node {torch.cuda.device_count()} or fewer."
            )
        device = f"cuda:{place.local_rank}"
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        yield Dist(place.rank, place.world_size, place.local_rank, device)
    finally:
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, place: Dist) -> torch.nn.Module:
    """The model DistributedDataParallel trains (gradients all-reduced); itself in one process."""
    if not place.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [place.local_rank] if place.device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids)


def shard(dataset, place: Dist):
    """This rank's share of an evaluation split (every image exactly once over all ranks)."""
    if not place.enabled:
        return dataset
    from torch.utils.data import Subset

    return Subset(dataset, range(place.rank, len(dataset), place.world_size))
