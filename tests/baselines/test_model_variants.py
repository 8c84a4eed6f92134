"""The reference-004 variants (BatchNorm, small head, GAP) go through the INT8 conversion too."""

import pytest

from qbench.baselines.checkpoint import save_checkpoint
from qbench.baselines.models import create_model
from qbench.workspace import Workspace


@pytest.mark.slow
def test_batchnorm_variant_quantizes_with_bn_folded(tmp_path):
    from qbench import pipeline
    from qbench.records import QuantizeOptions

    ws = Workspace(tmp_path / "ws")
    meta = {
        "model": "alexnet-gap",
        "num_classes": 10,
        "input_size": 64,
        "class_names": [str(d) for d in range(10)],
        "data": {"name": "digits", "root": None, "image_size": 64, "seed": 42, "augment": "none"},
    }
    save_checkpoint(ws.model_path, create_model("alexnet-gap", num_classes=10).eval(), meta)
    (record,) = pipeline.quantize(ws, ["int8-ptq"], QuantizeOptions(calib_batches=1, engine="x86"))
    assert record.status == "ok"
    ops = record.details["quantized_ops"]
    assert ops.get("ConvReLU2d") == 5 and "BatchNorm2d" not in ops  # conv+bn+relu fused and folded
