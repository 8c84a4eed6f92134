"""``pt2e``: a torchao PT2E-quantized graph saved as a torch.export ExportedProgram (.pt2).

The runner compiles it (``compiled=True``) with Inductor freezing, which is where the int8
kernels get fused; freezing is applied globally by the loader because
torch.compile(options={"freezing": True}) was not honoured reliably (the int8 weight prepack
then ran on fake tensors and compilation failed).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch

from qbench.artifacts._torch import quiet
from qbench.artifacts.base import corrupt_artifact, register_format, require_artifact
from qbench.records import VariantRecord
from qbench.records.io import atomic_path

MAX_BATCH = 1024
INDUCTOR_CONFIG = {"freezing": True}


def dynamic_batch():
    """torch.export's dynamic_shapes for one image-batch input."""
    return ({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},)


def drop_unused_state(graph: torch.fx.GraphModule) -> None:
    """convert_pt2e leaves the FP32 weights registered beside their folded int8 copies; re-exporting
    would save both (the artifact came out larger than the FP32 model), so drop what no node reads."""
    used = {node.target for node in graph.graph.nodes if node.op == "get_attr"}
    for name, _ in [*graph.named_parameters(), *graph.named_buffers()]:
        if name in used:
            continue
        owner_name, _, attr = name.rpartition(".")
        owner = graph.get_submodule(owner_name) if owner_name else graph
        delattr(owner, attr)


def save(path: Path, converted: torch.fx.GraphModule, example: torch.Tensor) -> Path:
    drop_unused_state(converted)
    program = torch.export.export(converted, (example,), dynamic_shapes=dynamic_batch())
    # a file object: torch.export.save warns about the temp file's suffix when given a path
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.export.save(program, fh)
    return Path(path)


def enable_inductor_int8() -> None:
    """Make ``torch.compile`` fuse the int8 graph as the runner needs (also used by int8-ptq's
    ``--engine auto``, which compiles the candidate exactly as the bench will)."""
    import torch._inductor.config as inductor_config
    import torchao.quantization.pt2e.quantize_pt2e

    # importing the quantizer registers torchao's Inductor int8 fusion and weight-prepack passes;
    # without them Inductor dequantizes every weight on every call (AlexNet ran 30x slower)
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401

    for key, value in INDUCTOR_CONFIG.items():
        setattr(inductor_config, key, value)


def load_graph(path: Path, mode: str) -> torch.fx.GraphModule:
    """The saved program as a module ready for ``torch.compile``; a bad file names the fix."""
    from torchao.quantization.pt2e import allow_exported_model_train_eval

    require_artifact(path, mode)
    try:
        with quiet(), _silence_export_log():
            graph = torch.export.load(path).module()
    except Exception as exc:
        raise corrupt_artifact(path, mode, exc) from None
    allow_exported_model_train_eval(graph)
    enable_inductor_int8()
    return graph


def load(path: Path, variant: VariantRecord, *, device: str = "cpu", threads: int | None = None):
    return load_graph(path, variant.mode)


@contextlib.contextmanager
def _silence_export_log():
    """torch.export.load logs a full traceback before raising on a bad file; the error says enough."""
    log = logging.getLogger("torch.export")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


FORMAT = register_format(
    "pt2e",
    save=save,
    load=load,
    description="torch.export ExportedProgram of a PT2E-quantized graph, run through torch.compile",
    compiled=True,
)
