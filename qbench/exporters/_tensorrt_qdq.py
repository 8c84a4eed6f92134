"""The QDQ ONNX form TensorRT builds INT8 engines from, checked before TensorRT sees a graph:
int8 activations with zero point 0, constant positive scales, float biases (no int32 bias
DequantizeLinear, which TensorRT's ONNX parser refuses), at least one quantized weighted op.
Pure onnx: runs and is tested without a GPU."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from qbench.errors import QBenchError

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _constants(graph) -> dict[str, np.ndarray]:
    """Initializers and Constant node outputs of an ONNX graph, by name."""
    from onnx import helper, numpy_helper

    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            value = helper.get_attribute_value(node.attribute[0])
            values[node.output[0]] = (
                numpy_helper.to_array(value) if hasattr(value, "data_type") else np.asarray(value)
            )
    return values


def _check_qdq_node(node, constants: dict[str, np.ndarray], producers: dict[str, Any], name: str) -> None:
    """One QuantizeLinear/DequantizeLinear as TensorRT takes it: (DequantizeLinear) an int8 input,
    a constant weight or a QuantizeLinear's output; constant positive scales; an int8 zero point of 0."""
    what = f"{name}: {node.op_type} {node.name or node.output[0]!r}"
    if node.op_type == "DequantizeLinear":
        _check_dequantized_input(node.input[0], constants, producers, what)
    scale = constants.get(node.input[1])
    if scale is None:
        raise QBenchError(
            f"{what} has a computed scale; TensorRT needs constant scales, so export the QDQ model again."
        )
    if not (np.isfinite(scale).all() and (scale > 0).all()):
        raise QBenchError(
            f"{what} has a zero, negative or non-finite scale; calibrate on more images (--calib-batches)."
        )
    zero_point = constants.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if zero_point is None and node.op_type == "QuantizeLinear":
        raise QBenchError(
            f"{what} has no zero point, so it writes uint8; TensorRT needs int8 with zero point 0 "
            "(symmetric activations)."
        )
    if zero_point is not None and (zero_point.dtype != np.int8 or zero_point.any()):
        raise QBenchError(
            f"{what} has a {zero_point.dtype} zero point {zero_point.ravel()[:4].tolist()}; TensorRT needs "
            "int8 with zero point 0, so quantize with symmetric activations (ActivationSymmetric)."
        )


def _check_dequantized_input(
    source: str, constants: dict[str, np.ndarray], producers: dict[str, Any], what: str
):
    if source not in constants:
        if getattr(producers.get(source), "op_type", None) != "QuantizeLinear":
            raise QBenchError(
                f"{what} reads a computed tensor, not a QuantizeLinear or a constant; export the QDQ model again."
            )
        return
    dtype = constants[source].dtype
    if dtype == np.int32:
        raise QBenchError(
            f"{what} dequantizes an int32 tensor (a quantized bias), which TensorRT's ONNX parser "
            "refuses; quantize with QuantizeBias off (float biases)."
        )
    if dtype != np.int8:
        raise QBenchError(
            f"{what} dequantizes a {dtype} tensor; TensorRT builds int8 QDQ graphs only, so quantize "
            "weights to int8."
        )


def check_tensorrt_qdq(path: Path) -> dict[str, Any]:
    """The facts of a QDQ ONNX model TensorRT builds as explicit INT8, or one sentence on why it
    would not: every Q/DQ with constant positive scales and int8 zero points of 0, no int32
    (bias) DequantizeLinear, and at least one conv/matmul reading a dequantized constant weight."""
    import onnx

    path = Path(path)
    graph = onnx.load(str(path), load_external_data=False).graph
    constants = _constants(graph)
    producers = {out: node for node in graph.node for out in node.output}
    counts: Counter[str] = Counter()
    dequantized: dict[str, bool] = {}  # DequantizeLinear output -> it dequantizes a constant (a weight)
    per_channel = 0
    for node in graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        _check_qdq_node(node, constants, producers, path.name)
        counts[node.op_type] += 1
        if node.op_type == "DequantizeLinear":
            dequantized[node.output[0]] = node.input[0] in constants
            per_channel += int(np.asarray(constants[node.input[1]]).size > 1)
    if not counts["QuantizeLinear"] or not counts["DequantizeLinear"]:
        raise QBenchError(
            f"{path.name} has no QuantizeLinear/DequantizeLinear pairs; quantize it to a QDQ model first."
        )
    quantized: Counter[str] = Counter()
    weighted = 0
    for node in graph.node:
        if node.op_type in QDQ_OPS or not any(i in dequantized for i in node.input):
            continue
        quantized[node.op_type] += 1
        weighted += int(node.op_type in WEIGHTED_OPS and any(dequantized.get(i) for i in node.input))
    if not weighted:
        raise QBenchError(
            f"{path.name}: no Conv/Gemm/MatMul reads a dequantized int8 weight, so TensorRT would run it "
            "in floating point; build --mode tensorrt-fp16 instead."
        )
    return {
        "QuantizeLinear": counts["QuantizeLinear"],
        "DequantizeLinear": counts["DequantizeLinear"],
        "per_channel_dequantize": per_channel,
        "int32_dequantize": 0,
        "zero_points": "all 0 (int8)",
        "quantized_ops": dict(sorted(quantized.items())),
        "quantized_weighted_ops": weighted,
    }
