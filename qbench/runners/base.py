"""The Runner interface every execution back-end implements (Polygraphy-style).

The harness drives a runner as::

    runner = create_runner(variant_record, artifact_dir, device="cpu", threads=2)
    runner.load()                       # load/compile the artifact; not timed
    native = runner.prepare(batch)      # float32 NCHW torch tensor -> back-end input; not timed
    out = runner.infer(native)          # the timed call
    runner.sync()                       # wait for the device (no-op on CPU); timed with infer
    logits = runner.to_logits(out)      # -> float32 torch tensor on the CPU; not timed
    raw = runner.profile(native, 10)    # optional, after the timed loop: per-layer operator times
    runner.close()

Runners import their back-end lazily inside ``load`` so importing qbench stays lean, and read
artifacts through ``qbench.artifacts`` (never through the exporters that wrote them). Every
public module of this package is a runner module, imported on the first lookup of
:data:`RUNNERS`; third-party runners register through the ``qbench.runners`` entry point group.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch

from qbench.errors import QBenchError
from qbench.records import VariantRecord
from qbench.registry import Registry
from qbench.runners._profiling import ProfilerUnavailable, RawProfile

RUNNERS: Registry[type[Runner]] = Registry(
    "runner", package="qbench.runners", entry_point_group="qbench.runners"
)
register_runner = RUNNERS.register


class Runner(ABC):
    """Loads one variant artifact and runs batches through it."""

    name = "base"

    def __init__(
        self, variant: VariantRecord, variant_dir: Path, device: str = "cpu", threads: int | None = None
    ):
        self.variant = variant
        self.variant_dir = Path(variant_dir)
        self.device = device
        self.threads = threads

    @property
    def artifact(self) -> Path:
        if not self.variant.artifact:
            raise QBenchError(
                f"variant {self.variant.mode!r} records no artifact; "
                f"rerun 'qbench quantize --mode {self.variant.mode}'."
            )
        return self.variant_dir / self.variant.artifact

    def load_artifact(self) -> Any:
        """The artifact loaded by its format's loader (qbench.artifacts)."""
        from qbench.artifacts import load_artifact

        return load_artifact(self.variant, self.variant_dir, device=self.device, threads=self.threads)

    @abstractmethod
    def load(self) -> None: ...

    def prepare(self, batch: torch.Tensor) -> Any:
        return batch

    @abstractmethod
    def infer(self, native_input: Any) -> Any: ...

    def sync(self) -> None:
        """Block until queued device work is done (CUDA); the CPU call has returned already."""

    def to_logits(self, output: Any) -> torch.Tensor:
        return torch.as_tensor(output).float().cpu()

    def close(self) -> None: ...

    def profile(self, native_input: Any, iterations: int) -> RawProfile:
        """Run ``iterations`` calls (after a short warm-up) under the back-end's own profiler and
        return each operator's time tagged with the model layer it belongs to.

        Called by the harness after the timed loop, never during it. Raises
        :class:`ProfilerUnavailable` where the back-end offers no per-layer profile.
        """
        raise ProfilerUnavailable(f"the {self.name} runner has no per-layer profiler")

    def describe(self) -> dict[str, Any]:
        """Facts about how this runner executes, recorded in the result (threads, provider...)."""
        return {"runner": self.name, "device": self.device, "threads": self.threads}

    def __enter__(self) -> Runner:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def create_runner(
    variant: VariantRecord, variant_dir: Path, device: str = "cpu", threads: int | None = None
) -> Runner:
    return RUNNERS.get(variant.runner)(variant, variant_dir, device=device, threads=threads)
