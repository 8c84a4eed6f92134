"""The Runner interface every execution back-end implements (Polygraphy-style).

The harness drives a runner as::

    runner = create_runner(variant_record, artifact_dir, device="cpu", threads=2)
    runner.load()                       # load/compile the artifact; not timed
    with runner.on_stream():            # CUDA: everything below enqueues on runner.stream
        native = runner.prepare(batch)  # float32 NCHW torch tensor -> back-end input; not timed
        out = runner.infer(native)      # the timed call (CUDA events recorded on runner.stream)
        runner.sync()                   # wait for the device (no-op on CPU); timed with infer
    logits = runner.to_logits(out)      # -> float32 torch tensor on the CPU; not timed
    raw = runner.profile(native, 10)    # optional, after the timed loop: per-layer operator times
    runner.close()

On a GPU every runner enqueues its work on one stream of its own, :attr:`Runner.stream`
(TensorRT through execute_async_v3, ONNX Runtime as its CUDA provider's user compute stream,
PyTorch as the current stream inside :meth:`Runner.on_stream`), so the harness's CUDA events,
recorded on that stream, time the work itself and not only its launch.

Runners import their back-end lazily inside ``load`` so importing qbench stays lean, and read
artifacts through ``qbench.artifacts`` (never through the exporters that wrote them). Every
public module of this package is a runner module, imported on the first lookup of
:data:`RUNNERS`; third-party runners register through the ``qbench.runners`` entry point group.
"""

from __future__ import annotations

import contextlib
import functools
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch

from qbench.errors import BackendUnavailable, QBenchError
from qbench.records import VariantRecord
from qbench.records.variant import device_index
from qbench.registry import Registry
from qbench.runners._profiling import ProfilerUnavailable, RawProfile

RUNNERS: Registry[type[Runner]] = Registry(
    "runner", package="qbench.runners", entry_point_group="qbench.runners"
)
register_runner = RUNNERS.register


class Runner(ABC):
    """Loads one variant artifact and runs batches through it."""

    name = "base"
    # the device kinds this back-end executes on (qbench.records.variant.DEVICE_KINDS)
    devices: tuple[str, ...] = ("cpu", "cuda")

    # whether this runner can replay a batch size's call as a captured CUDA graph (--cuda-graph)
    supports_cuda_graph = False

    def __init__(
        self,
        variant: VariantRecord,
        variant_dir: Path,
        device: str = "cpu",
        threads: int | None = None,
        cuda_graph: bool = False,
        tf32: bool | None = None,
    ):
        self.variant = variant
        self.variant_dir = Path(variant_dir)
        self.device = device
        self.threads = threads
        if cuda_graph and not (self.supports_cuda_graph and self.cuda):
            where = "on a CUDA device" if self.supports_cuda_graph else f"with the {self.name} runner"
            raise QBenchError(f"--cuda-graph is not available {where}; leave it out for {variant.mode}.")
        self.cuda_graph = cuda_graph
        self.tf32 = tf32  # GPU fp32 math: TF32 on/off, None: the back-end's default

    @property
    def artifact(self) -> Path:
        if not self.variant.artifact:
            raise QBenchError(
                f"variant {self.variant.mode!r} records no artifact; "
                f"rerun 'qbench quantize --mode {self.variant.mode}'."
            )
        return self.variant_dir / self.variant.artifact

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    @functools.cached_property
    def stream(self) -> torch.cuda.Stream | None:
        """The CUDA stream this runner's work runs on (None on the CPU); created on first use, on
        ``self.device``, which also becomes the current device (so ``cuda:N`` holds everywhere)."""
        if not self.cuda:
            return None
        if not torch.cuda.is_available():
            raise BackendUnavailable(
                f"{self.variant.mode} asks for {self.device}, but no CUDA device is visible; pass --device cpu."
            )
        torch.cuda.set_device(self.cuda_index)
        return torch.cuda.Stream(device=self.cuda_index)

    @property
    def cuda_index(self) -> int:
        """N of 'cuda:N'; for a bare 'cuda', the current device (torch.cuda.set_device takes no
        device without an index)."""
        return device_index(self.device, torch.cuda.current_device)

    def on_stream(self) -> contextlib.AbstractContextManager:
        """Make :attr:`stream` the current stream (a no-op on the CPU): inputs are copied, and
        PyTorch kernels launched, on the stream the events time."""
        return torch.cuda.stream(self.stream) if self.cuda else contextlib.nullcontext()

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

    def batch_size_for(self, n: int) -> int:
        """The batch size this runner takes ``n`` images at: ``n``, or for an engine built for
        fixed batch sizes the smallest one above it (the accuracy pass fills the batch up and
        drops the extra logits; the timed sweep never pads)."""
        return n

    def max_batch_size(self) -> int | None:
        """The largest batch this runner takes (an engine built for a range), None: no limit.
        The accuracy pass splits larger batches."""
        return None

    def sync(self) -> None:
        """Block until this runner's queued device work is done; the CPU call has returned already."""
        if self.cuda:
            self.stream.synchronize()

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
        facts: dict[str, Any] = {"runner": self.name, "device": self.device, "threads": self.threads}
        if self.cuda:
            facts["stream"] = "a stream of its own; CUDA events recorded on it"
            facts["cuda_graph"] = self.cuda_graph
        return facts

    def __enter__(self) -> Runner:
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def create_runner(
    variant: VariantRecord,
    variant_dir: Path,
    device: str = "cpu",
    threads: int | None = None,
    cuda_graph: bool = False,
    tf32: bool | None = None,
) -> Runner:
    return RUNNERS.get(variant.runner)(
        variant, variant_dir, device=device, threads=threads, cuda_graph=cuda_graph, tf32=tf32
    )
