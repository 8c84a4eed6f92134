"""The torchao PT2E engine: export-time checks, and one torch.compile run (compiling is slow)."""

from __future__ import annotations

import shutil

import pytest
import torch

from qbench.errors import QBenchError
from qbench.records import QuantizeOptions
from qbench.runners.base import create_runner


@pytest.fixture(scope="module")
def pt2e_workspace(tiny_baseline_root, tmp_path_factory):
    from qbench.pipeline.quantize import quantize
    from qbench.workspace import Workspace

    root = tmp_path_factory.mktemp("pt2e") / "default"
    shutil.copytree(tiny_baseline_root, root)
    ws = Workspace(root)
    options = QuantizeOptions(engine="pt2e", calib_batches=2, calib_method="histogram", qat_max_batches=4)
    records = quantize(ws, ["int8-ptq", "qat"], options)
    return ws, {r.mode: r for r in records}


def test_pt2e_graph_holds_quantize_nodes(pt2e_workspace):
    _, records = pt2e_workspace
    for mode in ("int8-ptq", "qat"):
        record = records[mode]
        assert record.format == "pt2e" and record.artifact.endswith(".pt2")
        assert record.ops_unit == "GOP/s"
        details = record.details
        assert details["engine_choice"]["engine"] == "pt2e"
        assert details["quantized_ops"]["quantize_per_tensor"] > 0
        assert details["quantized_ops"]["dequantize_per_channel"] == 4  # 2 convs + 2 linears
        assert details["compile"] is True and details["inductor_config"] == {"freezing": True}
    assert records["int8-ptq"].calibration.observer == "HistogramObserver"
    assert len(records["qat"].qat.history) == 1


def test_pt2e_compiled_runner_agrees_with_fp32(pt2e_workspace, test_split):
    ws, records = pt2e_workspace
    batches, reference = test_split
    full = [b for b in batches if len(b) == 64]  # one input shape: one compilation
    runner = create_runner(records["int8-ptq"], ws.variant_dir("int8-ptq"), threads=2)
    with runner:
        logits = torch.cat([runner.to_logits(runner.infer(runner.prepare(x))) for x in full])
        assert runner.describe()["compiled"] is True
    agreement = (logits.argmax(1) == reference[: len(logits)].argmax(1)).float().mean().item()
    assert agreement >= 0.95


def test_truncated_pt2_names_the_fix(pt2e_workspace, tmp_path):
    ws, records = pt2e_workspace
    copy_dir = tmp_path / "v"
    shutil.copytree(ws.variant_dir("int8-ptq"), copy_dir)
    artifact = copy_dir / records["int8-ptq"].artifact
    artifact.write_bytes(artifact.read_bytes()[:4000])
    with pytest.raises(QBenchError, match="rerun 'qbench quantize --mode int8-ptq'"):
        create_runner(records["int8-ptq"], copy_dir).load()


def test_reused_activation_modules_get_one_partition_per_call():
    """torchvision's BasicBlock calls one ReLU module twice; the quantizer needs one partition a call."""
    import torchvision

    from qbench.artifacts import pt2e
    from qbench.exporters.int8_ptq import split_shared_activations

    model = torchvision.models.resnet18(num_classes=10).train()
    graph = torch.export.export(
        model, (torch.randn(2, 3, 32, 32),), dynamic_shapes=pt2e.dynamic_batch()
    ).module()
    assert split_shared_activations(graph) == 16  # 8 blocks x (after bn1, after the residual add)
    names = [n.meta["source_fn_stack"][-1][0] for n in graph.graph.nodes if "source_fn_stack" in n.meta]
    assert len(names) == len(set(names)) == 16


def test_qat_on_resnet18_converts_with_pt2e(tmp_path):
    """Residual blocks (conv-bn-add-relu) through PT2E QAT: trained, converted, quantized convs."""
    from qbench.pipeline.quantize import quantize
    from tests.exporters.test_ao_eager_load import workspace

    ws = workspace(tmp_path, "resnet18", 32)
    (record,) = quantize(ws, ["qat"], QuantizeOptions(engine="pt2e", calib_batches=1, qat_max_batches=2))
    assert record.status == "ok" and record.format == "pt2e"
    assert record.details["quantized_ops"]["dequantize_per_channel"] == 21  # 20 convs + the fc
    assert record.qat.batches_per_epoch == 2 and record.qat.bn_layers_frozen
