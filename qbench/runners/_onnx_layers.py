"""Map the node names a runtime reports (ONNX Runtime, TensorRT) back to the torch model's layers.

qbench exports with ``torch.onnx.export(dynamo=True)``, which records each node's module path
in its ``pkg.torch.onnx.name_scopes`` metadata (``['', 'features', 'features.0', 'conv2d']``)
and names weights after their parameters (``features.0.weight``); ``quantize_static`` keeps
both and names the nodes it adds after the value they convert (``relu_QuantizeLinear``). The
runtime then optimizes the graph: it fuses nodes and renames them (``relu_nchwc``,
``node_conv2d_token_17``, ``fused node_linear``) and inserts its own (``ReorderOutput``,
``Transpose``). A reported name is traced back by removing the runtime's prefixes and suffixes
until it names an original node, or a value an original node produced (a fused Conv+Relu is
named after the Relu's output, so it is walked back to the Conv that produced the Relu's
input); quantize/dequantize nodes belong to the layer whose output they convert.

Nodes the runtime inserted have no such name (and ONNX Runtime numbers them differently from
one session to the next, so a saved optimized graph of another session cannot name them):
:meth:`OnnxLayerMap.layer` returns None and the caller places them by execution order.
Names of the older TorchScript exporter (``/features/features.0/Conv``) are read as paths.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from qbench.runners._profiling import MODEL_LAYER

INPUT_LAYER = "(input)"
SCOPES_KEY = "pkg.torch.onnx.name_scopes"
_SUFFIXES = (
    re.compile(r"_kernel_time$"),
    re.compile(r"_token_\d+$"),
    re.compile(r"_nchwc$"),
    re.compile(r"_(Quantize|Dequantize)Linear$"),
    re.compile(r"_(quant|dequant)$"),
)
_PARAM_SUFFIXES = ("_quantized", "_scale", "_zero_point", "_DequantizeLinear_Output", "_fp16")
_FAMILY_PREFIXES = ("QLinear", "Fused", "Nhwc", "DynamicQuantize")
COMPUTE_FAMILIES = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
_WALK_DEPTH = 4


def candidates(name: str) -> list[str]:
    """'fused node_linear' -> ['node_linear']; 'relu_1_nchwc' -> ['relu_1_nchwc', 'relu_1']."""
    name = name.removesuffix("_kernel_time").removeprefix("fused ").strip()
    found = [name]
    changed = True
    while changed:
        changed = False
        for pattern in _SUFFIXES:
            shorter = pattern.sub("", name)
            if shorter != name and shorter:
                name = shorter
                found.append(name)
                changed = True
    return found


def family(op_type: str) -> str:
    """QLinearConv, FusedConv, ConvInteger -> Conv; QGemm, FusedGemm -> Gemm; NhwcMaxPool -> MaxPool."""
    for prefix in _FAMILY_PREFIXES:
        op_type = op_type.removeprefix(prefix)
    if len(op_type) > 1 and op_type[0] == "Q" and op_type[1].isupper():
        op_type = op_type[1:]
    return op_type.removesuffix("Integer")


def qualified(parts: list[str]) -> str:
    """['features', 'features.0'] -> 'features.0'; ['layer1', 'layer1.0', 'conv1'] -> 'layer1.0.conv1'."""
    path = ""
    for part in parts:
        path = part if not path or part.startswith(path + ".") else f"{path}.{part}"
    return path


def node_module(node: Any) -> str | None:
    """The torch module path a node of the exported graph came from (MODEL_LAYER for the model's
    own forward); None when the node carries no such record."""
    meta = {prop.key: prop.value for prop in node.metadata_props}
    if SCOPES_KEY in meta:
        try:
            scopes = ast.literal_eval(meta[SCOPES_KEY])
        except (ValueError, SyntaxError):
            return None
        return qualified([s for s in scopes[1:-1] if s]) or MODEL_LAYER
    if node.name.startswith("/"):  # the TorchScript exporter's /features/features.0/Conv
        return qualified([p for p in node.name.split("/") if p][:-1]) or MODEL_LAYER
    return None


class OnnxLayerMap:
    """Resolves reported node names to the exported model's layer names (see the module doc)."""

    def __init__(self, original: Any):
        graph = original.graph
        self.nodes = {n.name: n for n in graph.node}
        self.producer = {out: n for n in graph.node for out in n.output}
        self.inputs = {i.name for i in graph.input}
        self.modules = {n.name: m for n in graph.node if (m := node_module(n)) is not None}
        self.known = set(self.modules.values())

    def param_module(self, value: str) -> str | None:
        """'features.0.weight_quantized' -> 'features.0' (when features.0 is a layer of the model)."""
        for suffix in _PARAM_SUFFIXES:
            value = value.replace(suffix, "")
        for kind in (".weight", ".bias"):
            if value.endswith(kind):
                module = value[: -len(kind)]
                if module in self.known or not self.known:
                    return module
        return None

    def inserted(self, name: str) -> bool:
        """A node the runtime added (no original node or value behind its name)."""
        return not any(c in self.nodes or c in self.producer or c in self.inputs for c in candidates(name))

    def _walk_back(self, node: Any, op_family: str) -> Any:
        """From a fused node's named end (a Relu) back to the node of the reported op (its Conv)."""
        if op_family not in COMPUTE_FAMILIES or family(node.op_type) == op_family:
            return node
        frontier = [node]
        for _ in range(_WALK_DEPTH):
            frontier = [self.producer[v] for n in frontier for v in n.input if v in self.producer]
            for candidate in frontier:
                if family(candidate.op_type) == op_family:
                    return candidate
        return node

    def _module_of(self, node: Any) -> str | None:
        """A node's layer; for a quantize/dequantize node quantize_static added, the layer whose
        output it converts (the graph input: INPUT_LAYER)."""
        for _ in range(_WALK_DEPTH):
            if node.name in self.modules:
                return self.modules[node.name]
            if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or not node.input:
                return None
            source = node.input[0]
            if source in self.inputs:
                return INPUT_LAYER
            if source not in self.producer:
                return self.param_module(source)
            node = self.producer[source]
        return None

    def _by_name(self, name: str, op_type: str) -> str | None:
        for candidate in candidates(name):
            for node in (self.nodes.get(candidate), self.producer.get(candidate)):
                if node is not None and (module := self._module_of(self._walk_back(node, family(op_type)))):
                    return module
            if candidate in self.inputs:
                return INPUT_LAYER
            if (module := self.param_module(candidate)) is not None:
                return module
        return None

    def layer(self, name: str, op_type: str) -> str | None:
        """The layer a reported node belongs to; None for a node the runtime inserted."""
        return self._by_name(name, op_type)

    def layer_of_parts(self, name: str) -> str:
        """A TensorRT layer name ('node_conv2d + node_relu', 'PWN(node_relu)'): the first part that
        maps to a layer of the model."""
        for part in re.split(r"\s*\+\s*|[()]", name):
            part = part.strip()
            if not part or part in ("PWN",):
                continue
            found = self._by_name(part, "")
            if found is not None:
                return found
        return name
