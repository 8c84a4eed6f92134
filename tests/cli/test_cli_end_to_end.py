"""The real console entry point in subprocesses: a tiny pipeline, and the bad inputs of DESIGN 6."""

from __future__ import annotations

import pytest
import torch

from qbench.baselines.models import create_model
from qbench.records import SCHEMA_VERSION, BenchResult, TrainRecord

TINY = ["--model", "tiny-cnn", "--image-size", "32"]


def _one_sentence_error(proc) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr  # no traceback, one sentence
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.slow
def test_baseline_bench_compare_pipeline(qbench_cli, tmp_path):
    p = qbench_cli("baseline", "--train", *TINY, "--epochs", "2", "--max-batches", "6")
    assert p.returncode == 0, p.stderr
    train_json = tmp_path / "runs/default/baseline/train.json"
    assert f'"schema_version": {SCHEMA_VERSION}' in train_json.read_text()
    train = TrainRecord.from_json(train_json)
    assert len(train.history) == 2 and train.outcome.epochs_trained == 2
    assert train.summary.total_params == sum(x.numel() for x in create_model("tiny-cnn", 10).parameters())

    p = qbench_cli("bench", "--iters", "5", "--warmup", "1", "--batch-sizes", "1,4")
    assert p.returncode == 0, p.stderr
    result = BenchResult.from_json(tmp_path / "runs/default/results/fp32.json")
    assert result.status == "ok" and [s.batch_size for s in result.latency] == [1, 4]
    assert all(s.n_samples == 5 and s.median_ms > 0 for s in result.latency)
    assert result.accuracy.n_images == 270
    # the table's best throughput is the reports' (batch / median), not the loop's wall-time figure
    best = max(result.latency, key=lambda s: s.median_throughput_ips)
    assert best.median_throughput_ips == pytest.approx(best.batch_size * 1000 / best.median_ms)
    assert f"{best.median_throughput_ips:,.1f}" in p.stderr + p.stdout

    p = qbench_cli("compare", "--report", "text,md")
    assert p.returncode == 0, p.stderr
    md = (tmp_path / "runs/default/reports/report.md").read_text()
    assert f"{best.median_throughput_ips:,.1f} img/s @{best.batch_size}" in md
    report = (tmp_path / "runs/default/reports/fp32.txt").read_text()
    assert "7. BASELINE REFERENCE FOR FUTURE COMPARISONS" in report
    assert f"Final Test Accuracy: {result.accuracy.top1:.4f}%" in report

    p = qbench_cli("baseline", "--evaluate")
    assert p.returncode == 0 and "top-1" in p.stdout


def test_help_lists_every_subcommand(qbench_cli):
    p = qbench_cli("--help")
    assert p.returncode == 0
    for name in ("baseline", "quantize", "bench", "compare", "run", "info"):
        assert name in p.stdout
        sub = qbench_cli(name, "--help")
        assert sub.returncode == 0 and "usage: qbench" in sub.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["baseline", "--model", "alexnet2"], "unknown model 'alexnet2'"),
        (["baseline", "--dataset", "imagenett"], "unknown dataset 'imagenett'"),
        (["baseline", "--import", "missing.pt", *TINY], "does not exist"),
        (["bench"], "qbench baseline --train"),
        (["run", "--modes", "int4"], "unknown mode 'int4'"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(qbench_cli, args, fragment):
    assert fragment in _one_sentence_error(qbench_cli(*args))


def test_empty_data_folder(qbench_cli, tmp_path):
    for split in ("train", "val"):
        (tmp_path / "data" / split / "cat").mkdir(parents=True)
    line = _one_sentence_error(qbench_cli("baseline", "--dataset", "imagefolder", "--data-root", "data"))
    assert "no images found" in line


def test_checkpoint_with_wrong_class_count(qbench_cli, tmp_path):
    torch.save(create_model("tiny-cnn", num_classes=3).state_dict(), tmp_path / "three.pt")
    line = _one_sentence_error(qbench_cli("baseline", "--import", "three.pt", *TINY))
    assert "has 3 output classes" in line
    assert not (tmp_path / "runs/default/baseline/model.pt").exists()  # nothing half-written


def test_import_keeps_the_users_weights(qbench_cli, tmp_path):
    model = create_model("tiny-cnn", num_classes=10)
    torch.save(model.state_dict(), tmp_path / "mine.pt")
    p = qbench_cli("baseline", "--import", "mine.pt", *TINY)
    assert p.returncode == 0, p.stderr
    saved = torch.load(tmp_path / "runs/default/baseline/model.pt", weights_only=True)
    assert torch.equal(saved["state_dict"]["classifier.0.weight"], model.state_dict()["classifier.0.weight"])
    train = TrainRecord.from_json(tmp_path / "runs/default/baseline/train.json")
    assert train.source.kind == "import" and train.source.checkpoint == "mine.pt"
    # an import knows no training: nothing is recorded as if it had been measured
    assert train.training is None and train.outcome is None and train.history == []
    assert train.training_precision is None and train.test.n_images == 270


def test_a_corrupt_artifact_fails_with_exit_2_its_sentence_whole(qbench_cli, tiny_workspace):
    """A truncated ONNX file is bad input, not a crash: exit 2, the table shows the loader's whole
    sentence with its fix (no exception class, no cut), and the earlier good record stays."""
    from qbench.pipeline.quantize import quantize
    from qbench.records import QuantizeOptions

    quantize(tiny_workspace, ["onnx"], QuantizeOptions())
    bench = ("bench", "--variants", "onnx", "--batch-sizes", "1", "--iters", "3", "--warmup", "1")
    assert qbench_cli(*bench).returncode == 0
    good = (tiny_workspace.results_dir / "onnx.json").read_bytes()
    artifact = tiny_workspace.variant_dir("onnx") / "model.onnx"
    artifact.write_bytes(artifact.read_bytes()[:2000])
    p = qbench_cli(*bench)
    assert p.returncode == 2, p.stdout + p.stderr
    notes = [line.split("│")[-2].strip() for line in p.stdout.splitlines() if line.count("│") > 2]
    assert " ".join(notes).endswith("rerun 'qbench quantize --mode onnx'.")  # the column wraps, never cuts
    assert "QBenchError" not in p.stdout
    assert (tiny_workspace.results_dir / "onnx.json").read_bytes() == good
    failed = BenchResult.from_json(tiny_workspace.results_dir / "failed" / "onnx.json")
    assert failed.status == "failed" and failed.input_error and "corrupt or truncated" in failed.skip_reason
