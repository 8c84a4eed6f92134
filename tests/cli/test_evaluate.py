"""qbench evaluate: the three-split tables, the typed record in the workspace, bad input."""

from qbench.records import EvaluationRecord


def test_evaluate_prints_three_split_tables_and_writes_the_record(tiny_workspace, qbench_cli):
    done = qbench_cli("evaluate", "--out", str(tiny_workspace.root))
    assert done.returncode == 0, done.stderr[-2000:]
    for title in ("Training", "Validation", "Testing", "Top-5 accuracy", "Testing F1", "confusion matrix"):
        assert title in done.stdout
    record = EvaluationRecord.from_json(tiny_workspace.root / "evaluation" / "fp32.json")
    assert record.eval_crops == "center" and list(record.splits) == ["train", "val", "test"]
    test = record.splits["test"]
    assert test.n_images == 270 and len(test.per_class) == 10 and sum(map(sum, test.confusion)) == 270
    assert f"{test.top1:.2f}" in done.stdout


def test_evaluate_a_checkpoint_file_and_bad_input(tiny_workspace, qbench_cli):
    done = qbench_cli(
        "evaluate",
        "--checkpoint",
        str(tiny_workspace.model_path),
        "--splits",
        "test",
        "--eval-crops",
        "ten",
        "--out",
        str(tiny_workspace.root),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = EvaluationRecord.from_json(tiny_workspace.root / "evaluation" / "checkpoint-model.json")
    assert record.eval_crops == "ten" and list(record.splits) == ["test"]
    missing = qbench_cli("evaluate", "--variant", "int8-ptq", "--out", str(tiny_workspace.root))
    assert missing.returncode == 2 and "qbench quantize --mode int8-ptq" in missing.stderr
    wrong = qbench_cli("evaluate", "--splits", "tset", "--out", str(tiny_workspace.root))
    assert wrong.returncode == 2 and "--splits" in wrong.stderr
