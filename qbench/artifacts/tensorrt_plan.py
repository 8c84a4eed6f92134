"""``tensorrt-plan``: a serialized TensorRT engine, deserialized on the device it runs on.

Besides the format's save/load pair, ``run_once`` runs a few batches through one optimization
profile of a deserialized engine: the exporter checks every engine it builds against PyTorch with
it (the runners layer, which times engines, is out of an exporter's reach), so it stays minimal:
a fresh execution context per call, synchronized after every batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qbench.artifacts.base import register_format, require_artifact
from qbench.errors import BackendUnavailable, QBenchError
from qbench.records import VariantRecord
from qbench.records.io import atomic_path


@dataclass
class Plan:
    """A deserialized engine and the runtime and logger that must outlive it."""

    trt: Any  # the tensorrt module
    logger: Any
    runtime: Any
    engine: Any

    def io_names(self) -> tuple[str, list[str]]:
        """The engine's one input and its outputs, by name."""
        engine = self.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == self.trt.TensorIOMode.INPUT]
        if len(inputs) != 1:
            raise QBenchError(
                f"the engine has {len(inputs)} inputs, not one image batch; rebuild it with qbench quantize."
            )
        return inputs[0], [n for n in names if n not in inputs]

    def profile_batches(self, input_name: str) -> list[tuple[int, int, int]]:
        """(min, opt, max) batch of each optimization profile, as the engine holds them."""
        shapes = [
            self.engine.get_tensor_profile_shape(input_name, i)
            for i in range(self.engine.num_optimization_profiles)
        ]
        return [(int(lo[0]), int(opt[0]), int(hi[0])) for lo, opt, hi in shapes]


def save(path: Path, serialized: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(bytes(serialized))
    return Path(path)


def deserialize(path: Path, mode: str) -> Plan:
    """The engine in ``path`` on the current CUDA device; ``mode`` names the fix in errors."""
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailable(
            "TensorRT needs a CUDA device and none is visible; pass --device cuda on a GPU."
        )
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendUnavailable("tensorrt is not installed; pip install 'qbench[gpu]'.") from None
    require_artifact(path, mode, what="engine")
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
    if engine is None:
        raise QBenchError(
            f"engine {path} cannot be deserialized (corrupt, truncated or built by another "
            f"TensorRT/GPU); rerun 'qbench quantize --mode {mode}' on this machine."
        )
    return Plan(trt, logger, runtime, engine)


def load(path: Path, variant: VariantRecord, *, device: str = "cpu", threads: int | None = None) -> Plan:
    return deserialize(path, variant.mode)


def torch_dtype(trt: Any, dtype: Any):
    """The torch dtype of a TensorRT tensor dtype (the I/O types an image classifier's engine has)."""
    import torch

    table = {
        trt.DataType.FLOAT: torch.float32,
        trt.DataType.HALF: torch.float16,
        trt.DataType.INT8: torch.int8,
        trt.DataType.INT32: torch.int32,
        trt.DataType.BOOL: torch.bool,
    }
    if hasattr(trt.DataType, "BF16"):
        table[trt.DataType.BF16] = torch.bfloat16
    if dtype not in table:
        raise QBenchError(
            f"the engine has an input or output of type {dtype}, which qbench cannot feed; rebuild it with qbench quantize."
        )
    return table[dtype]


def shape_context(
    plan: Plan, profile_index: int, shape: tuple[int, ...], stream: Any, device: str, mode: str
):
    """An execution context for one input shape: optimization profile ``profile_index`` selected
    on ``stream``, the input shape set, output buffers (torch CUDA tensors on ``device``) bound,
    each step checked with a one-sentence error. Returns (context, {output name: buffer}).

    Memory follows the profile in use (ON_PROFILE_CHANGE): the default strategy would give every
    context memory enough for the largest profile, one copy per batch size."""
    import torch

    trt, engine = plan.trt, plan.engine
    input_name, output_names = plan.io_names()
    strategy = getattr(getattr(trt, "ExecutionContextAllocationStrategy", None), "ON_PROFILE_CHANGE", None)
    context = (
        engine.create_execution_context(strategy=strategy)
        if strategy is not None
        else engine.create_execution_context()
    )
    if context is None:
        raise QBenchError(
            f"TensorRT could not create an execution context for {mode} (out of GPU memory?); free the GPU and retry."
        )
    try:  # the binding raises rather than return False
        context.set_optimization_profile_async(profile_index, stream.cuda_stream)
    except RuntimeError as exc:
        raise QBenchError(
            f"TensorRT refused optimization profile {profile_index} of {mode} ({exc}); rerun 'qbench quantize --mode {mode}'."
        ) from None
    if not context.set_input_shape(input_name, shape):
        raise QBenchError(
            f"TensorRT refused input shape {shape} on profile {profile_index} of {mode}; "
            f"rerun 'qbench quantize --mode {mode} --batch-sizes' with the sizes you bench."
        )
    outputs = {
        name: torch.empty(
            tuple(context.get_tensor_shape(name)),
            dtype=torch_dtype(trt, engine.get_tensor_dtype(name)),
            device=device,
        )
        for name in output_names
    }
    for name, tensor in outputs.items():
        if not context.set_tensor_address(name, tensor.data_ptr()):
            raise RuntimeError(f"TensorRT refused the buffer of output {name!r}; see the TensorRT log above")
    stream.synchronize()  # the profile switch is asynchronous
    return context, outputs


def enqueue(context: Any, input_name: str, x: Any, stream: Any) -> None:
    """One inference of ``x`` (a contiguous CUDA tensor) on ``stream``; not waited for."""
    if not context.set_tensor_address(input_name, x.data_ptr()):
        raise RuntimeError("TensorRT refused the input buffer; see the TensorRT log above")
    if not context.execute_async_v3(stream.cuda_stream):
        raise RuntimeError("TensorRT execute_async_v3 failed; see the TensorRT log above")


def run_once(plan: Plan, batches: list[Any], profile_index: int, mode: str = "the engine") -> list[Any]:
    """The engine's first output for each of ``batches`` (CPU tensors of one shape) on
    optimization profile ``profile_index``, as float32 CPU tensors, synchronized after each."""
    import torch

    input_name, output_names = plan.io_names()
    input_dtype = torch_dtype(plan.trt, plan.engine.get_tensor_dtype(input_name))
    stream = torch.cuda.Stream()
    context, outputs = shape_context(plan, profile_index, tuple(batches[0].shape), stream, "cuda", mode)
    results = []
    for batch in batches:
        x = batch.to("cuda", input_dtype).contiguous()
        stream.wait_stream(torch.cuda.current_stream())  # the input copy came first, on that stream
        enqueue(context, input_name, x, stream)
        stream.synchronize()
        results.append(outputs[output_names[0]].float().cpu())
    return results


FORMAT = register_format(
    "tensorrt-plan", save=save, load=load, description="serialized TensorRT engine (.plan)"
)
