"""Quantization-aware training whose learned parameters land in TensorRT's QDQ form: PT2E QAT
with a symmetric int8 config on X86InductorQuantizer, converted, and exported by torch.onnx
(torchlib maps the quantized_decomposed ops to QuantizeLinear/DequantizeLinear). Runs on the CPU;
TensorRT builds the engine from the exported file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from qbench.artifacts import pt2e
from qbench.artifacts._torch import quiet
from qbench.errors import QBenchError
from qbench.exporters.base import ExportContext
from qbench.exporters.int8_ptq import pt2e_convert, split_shared_activations
from qbench.exporters.onnx_export import export_module_onnx
from qbench.exporters.qat import fine_tune
from qbench.records import QatInfo


def symmetric_qat_config():
    """X86InductorQuantizer's QAT recipe with the int8 form TensorRT takes: activations int8 with
    zero point 0 (the x86 recipe's are uint8, asymmetric), weights per-channel symmetric in
    [-127, 127], biases left in floating point."""
    from torchao.quantization.pt2e import (
        FusedMovingAvgObsFakeQuantize,
        MovingAverageMinMaxObserver,
        MovingAveragePerChannelMinMaxObserver,
    )
    from torchao.quantization.pt2e.quantizer import QuantizationConfig, QuantizationSpec

    activation = QuantizationSpec(
        dtype=torch.int8,
        quant_min=-128,
        quant_max=127,
        qscheme=torch.per_tensor_symmetric,
        is_dynamic=False,
        observer_or_fake_quant_ctr=FusedMovingAvgObsFakeQuantize.with_args(
            observer=MovingAverageMinMaxObserver, eps=2**-12
        ),
    )
    weight = QuantizationSpec(
        dtype=torch.int8,
        quant_min=-127,
        quant_max=127,
        qscheme=torch.per_channel_symmetric,
        ch_axis=0,
        is_dynamic=False,
        observer_or_fake_quant_ctr=FusedMovingAvgObsFakeQuantize.with_args(
            observer=MovingAveragePerChannelMinMaxObserver, eps=2**-12
        ),
    )
    return QuantizationConfig(activation, activation, weight, None, is_qat=True)


def prepare_symmetric_qat(model: nn.Module, example: torch.Tensor):
    """The fake-quant PT2E graph of ``model`` under symmetric_qat_config (int8-ptq's export and
    partitioning, TensorRT's quantization form)."""
    import copy

    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import X86InductorQuantizer

    graph = torch.export.export(
        copy.deepcopy(model).train(), (example,), dynamic_shapes=pt2e.dynamic_batch()
    ).module()
    split_shared_activations(graph)
    quantizer = X86InductorQuantizer()
    quantizer.set_global(symmetric_qat_config())
    try:
        with quiet():
            return prepare_qat_pt2e(graph, quantizer)
    except ValueError as exc:  # the quantizer refuses QAT patterns it cannot partition
        raise QBenchError(
            f"torchao's PT2E QAT cannot annotate this architecture ({exc}); build --mode tensorrt-int8 instead."
        ) from None


def qat_qdq_onnx(ctx: ExportContext, dest: Path, mode: str = "tensorrt-qat") -> tuple[QatInfo, Any]:
    """Fine-tune the baseline with symmetric int8 fake quantization, convert it and export the
    QDQ ONNX TensorRT builds from to ``dest``; the QAT record and the converted PT2E graph."""
    example = ctx.example_input(2)
    prepared = prepare_symmetric_qat(ctx.model, example)
    info = fine_tune(ctx, prepared, "pt2e", mode)
    converted = pt2e_convert(prepared)
    pt2e.drop_unused_state(converted)  # the FP32 weights beside their folded int8 copies
    export_module_onnx(converted, example, dest)
    return info, converted
