"""TensorRT runner: a deserialized .plan (qbench.artifacts.tensorrt_plan), torch CUDA tensors as
buffers, execute_async_v3 on a torch CUDA stream (no pycuda). tensorrt is imported inside load()."""

from __future__ import annotations

from typing import Any

import torch

from qbench.runners.base import Runner, register_runner


def _torch_dtype(trt, dtype) -> torch.dtype:
    table = {
        trt.DataType.FLOAT: torch.float32,
        trt.DataType.HALF: torch.float16,
        trt.DataType.INT8: torch.int8,
        trt.DataType.INT32: torch.int32,
        trt.DataType.BOOL: torch.bool,
    }
    if hasattr(trt.DataType, "BF16"):
        table[trt.DataType.BF16] = torch.bfloat16
    return table[dtype]


@register_runner("tensorrt")
class TensorRTRunner(Runner):
    name = "tensorrt"

    def load(self) -> None:
        plan = self.load_artifact()  # checks CUDA and tensorrt, deserializes the engine
        trt = self.trt = plan.trt
        self.device = self.device if self.device.startswith("cuda") else "cuda"
        self.logger, self.runtime, self.engine = plan.logger, plan.runtime, plan.engine
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.input_name = inputs[0]
        self.output_names = [n for n in names if n not in inputs]
        self.input_dtype = _torch_dtype(trt, self.engine.get_tensor_dtype(self.input_name))
        self.stream = torch.cuda.Stream(device=self.device)
        self.outputs: dict[tuple, dict[str, torch.Tensor]] = {}

    def prepare(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.to(self.device, self.input_dtype).contiguous()

    def _output_buffers(self, shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        # allocated once per input shape so the timed call does no allocation
        if shape not in self.outputs:
            self.outputs[shape] = {
                name: torch.empty(
                    tuple(self.context.get_tensor_shape(name)),
                    dtype=_torch_dtype(self.trt, self.engine.get_tensor_dtype(name)),
                    device=self.device,
                )
                for name in self.output_names
            }
        return self.outputs[shape]

    def infer(self, native_input: torch.Tensor) -> torch.Tensor:
        self.context.set_input_shape(self.input_name, tuple(native_input.shape))
        outputs = self._output_buffers(tuple(native_input.shape))
        self.context.set_tensor_address(self.input_name, native_input.data_ptr())
        for name, tensor in outputs.items():
            self.context.set_tensor_address(name, tensor.data_ptr())
        # the input was written on the current stream; the engine runs on ours
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed; see the TensorRT log above")
        return outputs[self.output_names[0]]

    def sync(self) -> None:
        self.stream.synchronize()

    def to_logits(self, output: torch.Tensor) -> torch.Tensor:
        self.stream.synchronize()
        return output.float().cpu().clone()

    def close(self) -> None:
        self.outputs = {}
        self.context = self.engine = self.runtime = None

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "tensorrt": getattr(self.trt, "__version__", None) if hasattr(self, "trt") else None,
            "io_dtype": str(getattr(self, "input_dtype", "")).removeprefix("torch."),
            "stream": "torch.cuda.Stream + execute_async_v3",
        }
