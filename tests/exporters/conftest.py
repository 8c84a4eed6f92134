"""One tiny workspace converted into every CPU variant once per module (conversions are the slow part)."""

from __future__ import annotations

import shutil

import pytest

FAST_MODES = [
    "fp32",
    "int8-ptq",
    "int8-dynamic",
    "qat",
    "onnx",
    "onnx-fp16",
    "onnx-int8",
    "tensorrt-fp16",
    "tensorrt-int8",
]


@pytest.fixture(scope="module")
def converted(tiny_baseline_root, tmp_path_factory):
    """(workspace, {mode: VariantRecord}) with every mode converted with small, fast options."""
    from qbench.pipeline.quantize import quantize
    from qbench.records import QuantizeOptions
    from qbench.workspace import Workspace

    root = tmp_path_factory.mktemp("converted") / "default"
    shutil.copytree(tiny_baseline_root, root)
    ws = Workspace(root)
    # the x86 engine named, not measured (tests/exporters/test_engine_choice.py covers --engine auto):
    # the checks below are of eager-mode details, and QAT goes through its cheap pre-training probe
    options = QuantizeOptions(
        engine="x86", calib_batches=4, calib_batch_size=32, qat_epochs=2, qat_max_batches=6, qat_lr=1e-3
    )
    records = quantize(ws, FAST_MODES, options)
    return ws, {r.mode: r for r in records}


@pytest.fixture(scope="module")
def test_split(tiny_baseline_root):
    """The digits test split as a few fixed batches, and the FP32 baseline's predictions on it."""
    import torch

    from qbench.baselines.checkpoint import load_checkpoint
    from qbench.data.registry import load_data, loader
    from qbench.records import DataConfig
    from qbench.workspace import Workspace

    model, meta = load_checkpoint(Workspace(tiny_baseline_root).model_path)
    data = load_data(DataConfig.from_dict(meta["data"]))
    batches = [x for x, _ in loader(data.test, 64)]
    with torch.inference_mode():
        reference = torch.cat([model(x) for x in batches])
    return batches, reference
