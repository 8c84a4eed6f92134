"""The torch runner reads every artifact through its qbench.artifacts format, never an exporter."""

from __future__ import annotations

import torch

from qbench.records import BaselineRef, VariantRecord
from qbench.runners.base import create_runner


def _variant(fmt: str, artifact: str, dtype: str = "float32") -> VariantRecord:
    return VariantRecord(
        mode="toy",
        status="ok",
        runner="torch",
        description="a test variant",
        baseline=BaselineRef(model="tiny-cnn", num_classes=10, input_size=32),
        artifact=artifact,
        format=fmt,
        dtype=dtype,
    )


def test_built_in_formats_are_discovered():
    from qbench.artifacts import ARTIFACT_FORMATS

    names = set(ARTIFACT_FORMATS.names())
    assert {"checkpoint", "ao-eager-int8", "ao-dynamic-int8", "pt2e", "onnx", "tensorrt-plan"} <= names
    assert {"state-dict"} <= names
    assert ARTIFACT_FORMATS.get("pt2e").compiled and not ARTIFACT_FORMATS.get("state-dict").compiled


def test_state_dict_format_runs_through_the_torch_runner(tmp_path):
    """The generic format a new mode can reuse: weights assigned into the rebuilt architecture."""
    from qbench.artifacts import state_dict
    from qbench.baselines.models import create_model

    torch.manual_seed(0)
    model = create_model("tiny-cnn", num_classes=10).eval()
    state_dict.FORMAT.save(tmp_path / "model.pt", model)
    x = torch.randn(4, 3, 32, 32)
    with create_runner(_variant("state-dict", "model.pt"), tmp_path, threads=1) as runner:
        logits = runner.to_logits(runner.infer(runner.prepare(x)))
        assert runner.describe()["compiled"] is False
    with torch.inference_mode():
        torch.testing.assert_close(logits, model(x))
