"""'qbench run' decides what is up to date from the settings and checksums in the records.

One real tiny run (tiny-cnn, fp32 and int8-ptq) is made once; each test copies its workspace and
asks the staleness checks about other settings, tampered files and failed records, and one test
reruns the real command with other batch sizes (issue 11: '--batch-sizes 1,4 after 1,2').
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys

import pytest

from qbench.pipeline.staleness import baseline_staleness, stale_results, stale_variants
from qbench.records import BenchResult, QuantizeOptions, VariantRecord
from qbench.reports.sources import load_source
from qbench.workspace import Workspace

MODES = ["fp32", "int8-ptq"]
RUN = [
    *("run", "--model", "tiny-cnn", "--image-size", "32", "--modes", ",".join(MODES), "--epochs", "1"),
    *("--max-batches", "2", "--batch-sizes", "1,2", "--iters", "3", "--warmup", "1", "--report", "text"),
]


def _cli(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qbench.cli.main", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def _settings(*extra: str):
    """(RunOptions, BaselineRequest) of 'qbench run' with the fixture's flags and ``extra``."""
    from qbench.cli.baseline import request_from_args
    from qbench.cli.main import build_parser
    from qbench.cli.run import options_from_args

    args = build_parser().parse_args([*RUN, *extra])
    return options_from_args(args), request_from_args(args)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("staleness")
    p = _cli(cwd, *RUN)
    assert p.returncode == 0, p.stderr[-3000:]
    return cwd


@pytest.fixture
def ws(made, tmp_path) -> Workspace:
    """A private copy of the made workspace."""
    shutil.copytree(made / "runs", tmp_path / "runs")
    return Workspace(tmp_path / "runs" / "default")


def test_the_same_settings_redo_nothing(ws):
    options, request = _settings()
    assert baseline_staleness(ws, request) is None
    assert stale_variants(ws, MODES, options.quantize) == {}
    assert stale_results(ws, MODES, options.bench) == {}


@pytest.mark.parametrize(
    "flags, reason",
    [
        (["--batch-sizes", "1,4"], "batch sizes 1,2 -> 1,4"),
        (["--iters", "5"], "iterations 3 -> 5"),
        (["--max-seconds-per-batch", "0"], "time budget per batch size (s) 2 -> none"),
    ],
)
def test_other_bench_settings_redo_the_bench_only(ws, flags, reason):
    options, request = _settings(*flags)
    assert baseline_staleness(ws, request) is None
    assert stale_variants(ws, MODES, options.quantize) == {}
    assert stale_results(ws, MODES, options.bench) == dict.fromkeys(MODES, reason)


def test_fewer_repeats_than_asked_for_is_stale(ws):
    options, _ = _settings()
    bench = dataclasses.replace(options.bench, repeats=3)
    assert stale_results(ws, ["fp32"], bench) == {"fp32": "repeats 1 -> 3; 1 of 3 repeats finished"}


@pytest.mark.parametrize(
    "flags, reason",
    [
        (["--model", "resnet18"], "model tiny-cnn -> resnet18"),
        (["--image-size", "40"], "image size 32 -> 40"),
        (["--epochs", "2"], "epochs 1 -> 2"),
        (["--dataset", "mnist"], "data set digits -> mnist"),
    ],
)
def test_another_model_data_or_training_retrains(ws, flags, reason):
    _, request = _settings(*flags)
    assert reason in baseline_staleness(ws, request)


def test_quantize_options_matter_only_to_the_variants_they_change(ws):
    options, _ = _settings()
    other = dataclasses.replace(options.quantize, calib_batches=3, qat_epochs=2)
    # fp32 was not calibrated, and int8-ptq is no QAT: only the calibration change counts
    assert stale_variants(ws, MODES, other) == {"int8-ptq": "calibration batches 8 -> 3"}


def test_a_changed_artifact_or_baseline_is_caught_by_its_checksum(ws):
    options, request = _settings()
    variant = VariantRecord.from_json(ws.variant_json("int8-ptq"))
    with open(ws.variant_dir("int8-ptq") / variant.artifact, "ab") as fh:
        fh.write(b"\0")
    assert stale_variants(ws, MODES, options.quantize) == {
        "int8-ptq": f"its artifact {variant.artifact} changed since its conversion"
    }
    with open(ws.model_path, "ab") as fh:  # a baseline written after its record (or replaced)
        fh.write(b"\0")
    assert "model.pt is newer than train.json" in baseline_staleness(ws, request)
    assert set(stale_variants(ws, MODES, options.quantize).values()) == {
        "the baseline changed since its conversion"
    }


def test_a_result_of_a_variant_converted_again_is_stale(ws):
    options, _ = _settings()
    variant = VariantRecord.from_json(ws.variant_json("fp32"))
    dataclasses.replace(variant, created="2030-01-01T00:00:00+0000").save_json(ws.variant_json("fp32"))
    (why,) = stale_results(ws, MODES, options.bench).values()
    assert why.startswith("the variant was converted again") and "2030-01-01" in why


def test_a_failed_bench_is_kept_beside_the_good_record_and_redone(ws):
    options, _ = _settings()
    good, on_disk = BenchResult.from_json(ws.result_path("int8-ptq")), ws.result_path("int8-ptq").read_bytes()
    failed = dataclasses.replace(good, status="failed", skip_reason="RuntimeError: broken artifact", notes=[])
    assert ws.save_result(failed) == ws.failed_result_path("int8-ptq")
    assert ws.result_path("int8-ptq").read_bytes() == on_disk  # not replaced
    assert ws.failed_result_path("int8-ptq") not in ws.result_paths()
    assert "is kept" in BenchResult.from_json(ws.failed_result_path("int8-ptq")).notes[-1]
    assert stale_results(ws, MODES, options.bench) == {
        "int8-ptq": "the last bench failed (RuntimeError: broken artifact)"
    }
    (shown,) = [r for r in load_source(ws).results if r.mode == "int8-ptq"]
    assert any("failed: RuntimeError: broken artifact; this is the earlier result" in n for n in shown.notes)
    assert ws.save_result(good) == ws.result_path("int8-ptq")  # a good bench clears the failure
    assert not ws.failed_result_path("int8-ptq").exists()
    # with no good record to keep, the failure is the result (and the reports show it as failed)
    ws.result_path("fp32").unlink()
    assert ws.save_result(dataclasses.replace(failed, mode="fp32")) == ws.result_path("fp32")


def test_a_skipped_variant_is_redone_once_its_requirement_is_met(ws):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: no requirement here is unmet")
    variant = VariantRecord.from_json(ws.variant_json("fp32"))
    skipped = dataclasses.replace(variant, status="skipped", skip_reason="no CUDA device", requires=["cuda"])
    skipped.save_json(ws.variant_json("fp32"))
    assert stale_variants(ws, ["fp32"], QuantizeOptions()) == {}  # still cannot be made here
    dataclasses.replace(skipped, requires=[]).save_json(ws.variant_json("fp32"))
    assert stale_variants(ws, ["fp32"], QuantizeOptions()) == {
        "fp32": "skipped at conversion (no CUDA device), but its requirements are met now"
    }


@pytest.mark.slow
def test_run_with_other_batch_sizes_rebenches_and_says_why(ws):
    first = {m: BenchResult.from_json(ws.result_path(m)) for m in MODES}
    p = _cli(ws.root.parent.parent, *RUN, "--batch-sizes", "1,4")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "baseline is up to date" in p.stderr and "variants up to date: fp32, int8-ptq" in p.stderr
    for mode in MODES:
        assert f"bench {mode} again: batch sizes 1,2 -> 1,4" in p.stderr
        again = BenchResult.from_json(ws.result_path(mode))
        assert [s.batch_size for s in again.latency] == [1, 4] and again.variant == first[mode].variant
