"""'qbench run' resumes: up-to-date steps are skipped, failed or unreadable records are redone."""

from __future__ import annotations

import dataclasses

import pytest

from qbench.pipeline.quantize import quantize
from qbench.pipeline.staleness import stale_results, stale_variants, stored_baseline
from qbench.records import BenchOptions, BenchResult, BenchSettings, QuantizeOptions, VariantRecord

TINY = ["--model", "tiny-cnn", "--image-size", "32"]


def _result(status: str, variant: VariantRecord | None = None) -> BenchResult:
    return BenchResult(
        mode="fp32", status=status, settings=BenchSettings(options=BenchOptions()), variant=variant
    )


def test_failed_or_unreadable_records_are_not_up_to_date(tiny_workspace):
    ws = tiny_workspace
    assert stored_baseline(ws) is None  # model.pt without a readable train.json: retrain
    assert stale_variants(ws, ["fp32"]) == {"fp32": "not converted yet"}
    (variant,) = quantize(ws, ["fp32"], QuantizeOptions())
    assert stale_variants(ws, ["fp32"]) == {}
    assert stale_results(ws, ["fp32"]) == {"fp32": "not benched yet"}
    _result("ok", variant).save_json(ws.result_path("fp32"))
    assert stale_results(ws, ["fp32"]) == {}
    _result("failed").save_json(ws.result_path("fp32"))
    assert stale_results(ws, ["fp32"])["fp32"].startswith("the last bench failed")
    ws.result_path("fp32").write_text('{"schema_version": 1}')  # an older qbench's record
    assert stale_results(ws, ["fp32"]) == {"fp32": "fp32.json does not read with this qbench"}
    dataclasses.replace(variant, status="failed").save_json(ws.variant_json("fp32"))
    assert stale_variants(ws, ["fp32"])["fp32"].startswith("the last conversion failed")


@pytest.mark.slow
def test_run_then_resume_redoes_only_the_failed_bench(qbench_cli, tmp_path):
    args = ["run", *TINY, "--modes", "fp32", "--epochs", "1", "--max-batches", "2"]
    args += ["--batch-sizes", "1", "--iters", "3", "--warmup", "1", "--report", "text"]
    p = qbench_cli(*args)
    assert p.returncode == 0, p.stderr
    result_path = tmp_path / "runs/default/results/fp32.json"
    first = BenchResult.from_json(result_path)
    assert first.status == "ok" and (tmp_path / "runs/default/reports/fp32.txt").is_file()

    dataclasses.replace(first, status="failed").save_json(result_path)
    p = qbench_cli(*args)
    assert p.returncode == 0, p.stderr
    assert "baseline is up to date" in p.stderr and "variants up to date: fp32" in p.stderr
    again = BenchResult.from_json(result_path)
    assert again.status == "ok" and again.created != first.created


def test_info_lists_the_modes_that_run_here(qbench_cli):
    p = qbench_cli("info")
    assert p.returncode == 0, p.stderr
    assert "fp32" in p.stdout and "runs here" in p.stdout
    from qbench import capabilities

    if capabilities.cpu_family():  # fp16 and bf16 said native or emulated before anything runs
        assert (
            "fp16     arithmetic on the CPU: " in p.stdout and "bf16     arithmetic on the CPU: " in p.stdout
        )
