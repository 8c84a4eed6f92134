"""Loading an ao-eager-int8 artifact builds the quantized structure without converting anything,
and gives exactly the model the conversion saved; QAT's pre-training probe uses the same structure."""

from __future__ import annotations

import time

import pytest
import torch

from qbench.artifacts import ao_eager
from qbench.baselines.checkpoint import save_checkpoint
from qbench.baselines.models import create_model
from qbench.errors import QBenchError
from qbench.records import QuantizeOptions
from qbench.workspace import Workspace


def workspace(tmp_path, model: str, size: int) -> Workspace:
    ws = Workspace(tmp_path / model)
    meta = {
        "model": model,
        "num_classes": 10,
        "input_size": size,
        "class_names": [str(d) for d in range(10)],
        "data": {"name": "digits", "root": None, "image_size": size, "seed": 42, "augment": "none"},
    }
    torch.manual_seed(0)
    save_checkpoint(ws.model_path, create_model(model, num_classes=10).eval(), meta)
    return ws


def reference_and_loaded(ws: Workspace, mode: str = "int8-ptq"):
    """The converted model rebuilt the old way (calibrated skeleton) and through the format's loader."""
    from qbench.artifacts._torch import load_state_into, read_state_dict
    from qbench.records import VariantRecord

    record = VariantRecord.from_json(ws.variant_json(mode))
    path = ws.variant_dir(mode) / record.artifact
    base = record.baseline
    slow = ao_eager._calibrated_skeleton(create_model(base.model, num_classes=10).eval(), base.input_size)
    reference = load_state_into(slow, read_state_dict(path, mode), path, mode)
    return reference, ao_eager.load(path, record), record


@pytest.mark.parametrize(("model", "size"), [("tiny-cnn", 32), ("alexnet-gap", 64)])
def test_loader_builds_the_converted_structure_without_converting(tmp_path, monkeypatch, model, size):
    from qbench.pipeline.quantize import quantize

    ws = workspace(tmp_path, model, size)
    quantize(ws, ["int8-ptq"], QuantizeOptions(engine="x86", calib_batches=1, calib_batch_size=8))

    def no_conversion(*_args, **_kwargs):
        raise AssertionError("the loader must not convert (quantize and prepack throw-away weights)")

    reference, _, record = reference_and_loaded(ws)
    monkeypatch.setattr(ao_eager, "eager_convert", no_conversion)
    loaded = ao_eager.load(ws.variant_dir("int8-ptq") / record.artifact, record)
    assert [(n, type(m)) for n, m in loaded.named_modules()] == [
        (n, type(m)) for n, m in reference.named_modules()
    ]
    x = torch.randn(3, 3, size, size)
    with torch.inference_mode():
        assert torch.equal(loaded(x), reference(x))
    linear = next(m for m in loaded.modules() if type(m).__name__ in ("Linear", "LinearReLU"))
    assert linear.weight().shape == (linear.out_features, linear.in_features)


def test_unknown_quantizable_module_falls_back_to_a_real_conversion(tmp_path, monkeypatch):
    """A module torch.ao would swap but the skeleton has no builder for: the slow, exact path."""
    from qbench.pipeline.quantize import quantize

    ws = workspace(tmp_path, "tiny-cnn", 32)
    quantize(ws, ["int8-ptq"], QuantizeOptions(engine="x86", calib_batches=1, calib_batch_size=8))
    builders = ao_eager._skeleton_builders
    monkeypatch.setattr(
        ao_eager,
        "_skeleton_builders",
        lambda runnable: {k: v for k, v in builders(runnable).items() if k is not torch.nn.Linear},
    )
    with pytest.raises(ao_eager.SkeletonUnsupported):
        with torch.device("meta"):
            meta_model = create_model("tiny-cnn", num_classes=10)
        ao_eager.quantized_skeleton(meta_model)
    reference, loaded, _ = reference_and_loaded(ws)
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(loaded(x), reference(x))


def test_load_is_cheaper_than_converting_a_skeleton(tmp_path):
    """Same process, alternating, median of 5: the structure-only load against the old one."""
    import statistics

    from qbench.pipeline.quantize import quantize

    ws = workspace(tmp_path, "tiny-cnn", 32)
    (record,) = quantize(ws, ["int8-ptq"], QuantizeOptions(engine="x86", calib_batches=1, calib_batch_size=8))
    path = ws.variant_dir("int8-ptq") / record.artifact

    def old_load():
        from qbench.artifacts._torch import load_state_into, read_state_dict

        state = read_state_dict(path, "int8-ptq")
        skeleton = ao_eager._calibrated_skeleton(create_model("tiny-cnn", num_classes=10).eval(), 32)
        return load_state_into(skeleton, state, path, "int8-ptq")

    new_s, old_s = [], []
    for _ in range(5):
        start = time.perf_counter()
        ao_eager.load(path, record)
        new_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        old_load()
        old_s.append(time.perf_counter() - start)
    assert statistics.median(new_s) < statistics.median(old_s)


def test_qat_with_x86_on_an_architecture_eager_cannot_quantize_fails_before_training(tmp_path, monkeypatch):
    from qbench.exporters import qat
    from qbench.pipeline.quantize import quantize

    ws = workspace(tmp_path, "resnet18", 32)

    def no_training(*_args, **_kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(qat, "_prepare", no_training)
    with pytest.raises(QBenchError, match="pass --engine pt2e"):
        quantize(ws, ["qat"], QuantizeOptions(engine="x86", calib_batches=1, qat_max_batches=1))
