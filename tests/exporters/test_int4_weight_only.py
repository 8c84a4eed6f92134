"""int4-weight-only: torchao INT4 weights on the Linear layers, on the tiny trained workspace."""

from __future__ import annotations

import pytest
import torch

from qbench import capabilities
from qbench.exporters import int4_weight_only
from qbench.records import BenchOptions, QuantizeOptions, VariantRecord
from qbench.runners.base import create_runner

MODE = int4_weight_only.MODE
pytestmark = pytest.mark.skipif(
    capabilities.missing(int4_weight_only.CAPABILITY) is not None,
    reason=str(capabilities.missing(int4_weight_only.CAPABILITY)),
)


@pytest.fixture(scope="module")
def int4_workspace(tiny_baseline_root, tmp_path_factory):
    import shutil

    from qbench.pipeline.quantize import quantize
    from qbench.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("int4") / "default")
    shutil.copytree(tiny_baseline_root, ws.root)
    (record,) = quantize(ws, [MODE], QuantizeOptions())
    return ws, record


def test_mode_is_registered_with_its_unit_and_provenance():
    from qbench.exporters.base import EXPORTERS, modes

    assert MODE in modes()
    meta = EXPORTERS.entry(MODE).meta
    assert meta["ops_unit"] == "GFLOP/s"  # weight-only: the arithmetic stays floating point
    assert set(meta["libraries"]) == {"torch", "torchao"}


def test_linear_weights_become_int4_and_the_record_says_how(int4_workspace):
    ws, record = int4_workspace
    assert VariantRecord.from_json(ws.variant_json(MODE)) == record
    assert record.status == "ok" and record.format == "state-dict"
    assert record.weights.startswith("int4") and record.activations == "fp32"
    assert record.engine.startswith("torchao ") and "group 32" in record.engine
    assert record.details["quantized_linear_layers"] == ["classifier.0", "classifier.2"]
    assert set(record.tool_versions) == {"torch", "torchao"}
    state = torch.load(ws.variant_dir(MODE) / record.artifact, weights_only=True)
    assert type(state["classifier.0.weight"]).__module__.startswith("torchao")  # a quantized tensor
    assert state["features.0.weight"].dtype == torch.float32  # convolutions stay FP32


def test_runner_output_agrees_with_fp32(int4_workspace, test_split):
    ws, record = int4_workspace
    batches, reference = test_split
    runner = create_runner(record, ws.variant_dir(MODE), threads=2)
    with runner:
        logits = torch.cat([runner.to_logits(runner.infer(runner.prepare(x))) for x in batches])
    agreement = (logits.argmax(1) == reference.argmax(1)).float().mean().item()
    assert agreement >= 0.9, agreement
    assert not torch.equal(logits, reference)  # the weights really changed


def test_bench_loads_it_in_a_fresh_process(int4_workspace):
    from qbench.pipeline.bench import bench

    ws, _ = int4_workspace
    (result,) = bench(ws, BenchOptions(variants=[MODE], batch_sizes=[1, 2], iters=6, warmup=1))
    assert result.status == "ok", result.notes
    assert result.efficiency.unit == "GFLOP/s" and result.accuracy.agreement is not None


def test_no_kernel_here_is_a_skip_with_the_reason(tiny_workspace, monkeypatch):
    from qbench.exporters.base import EXPORTERS, ExportContext, run_export

    reason = "no torchao INT4 weight-only kernel runs on this CPU (test)"
    monkeypatch.setitem(capabilities.CHECKS, int4_weight_only.CAPABILITY, lambda: reason)
    capabilities.missing.cache_clear()
    try:
        ctx = ExportContext(
            workspace=tiny_workspace,
            model=None,
            meta={"model": "tiny-cnn", "num_classes": 10, "input_size": 32},
            options=QuantizeOptions(),
            data_loader=lambda: None,
        )
        record = run_export(MODE, ctx)
    finally:
        capabilities.missing.cache_clear()
    assert EXPORTERS.entry(MODE)
    assert record.status == "skipped" and record.skip_reason == reason
    assert VariantRecord.from_json(tiny_workspace.variant_json(MODE)).skip_reason == reason
