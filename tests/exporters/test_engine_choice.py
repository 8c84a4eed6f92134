"""--engine auto: the candidates are converted and measured here, the choice and its numbers recorded."""

from __future__ import annotations

import math
import shutil
import time

import pytest

from qbench.exporters import int8_ptq
from qbench.records import QuantizeOptions, VariantRecord


def facts(**scores_at):
    """Measurement facts shaped like int8_ptq.measure's: engine -> {batch: ms}."""
    out = {}
    for engine, per_batch in scores_at.items():
        best = {str(b): ms for b, ms in per_batch.items()}
        score = math.exp(sum(math.log(v) for v in best.values()) / len(best))
        out[engine] = {"median_ms": best, "score_ms": score}
    return out


def test_decide_takes_the_lowest_geometric_mean_and_keeps_x86_on_a_tie():
    # pt2e slower at batch 1 but twice as fast at 64: geometric mean 38.9 vs 54.3 ms
    engine, why = int8_ptq.decide(facts(x86={1: 13.1, 64: 225.0}, pt2e={1: 14.2, 64: 109.0}))
    assert engine == "pt2e" and "pt2e is the fastest" in why and "109 ms at batch 64" in why
    # 3% better is within the tie margin: x86 needs no compile step in every measuring process
    engine, why = int8_ptq.decide(facts(x86={1: 10.0, 64: 100.0}, pt2e={1: 9.7, 64: 97.0}))
    assert engine == "x86" and "x86 kept" in why
    engine, _ = int8_ptq.decide(facts(x86={1: 5.0, 64: 90.0}, pt2e={1: 9.0, 64: 95.0}))
    assert engine == "x86"


def test_measure_alternates_rounds_and_records_what_it_took():
    calls = {"slow": lambda x: time.sleep(0.004), "fast": lambda x: time.sleep(0.001)}
    inputs = {1: None, 64: None}
    iters = {name: {1: 2, 64: 1} for name in calls}
    measured = int8_ptq.measure(calls, inputs, iters)
    for name in calls:
        fact = measured[name]
        assert set(fact["median_ms"]) == {"1", "64"}
        assert fact["iterations"] == {"1": 2 * int8_ptq.CHOICE_ROUNDS, "64": int8_ptq.CHOICE_ROUNDS}
        assert all(len(v) == int8_ptq.CHOICE_ROUNDS for v in fact["round_median_ms"].values())
        # the figure kept is the least disturbed round's median
        assert fact["median_ms"]["1"] == min(fact["round_median_ms"]["1"])
    assert measured["fast"]["score_ms"] < measured["slow"]["score_ms"]
    assert 0.9 <= measured["fast"]["median_ms"]["1"] < 4.0
    assert int8_ptq.decide(measured)[0] == "fast"


@pytest.fixture(scope="module")
def auto_workspace(tiny_baseline_root, tmp_path_factory):
    """int8-ptq and qat converted with --engine auto (int8-ptq measures; qat reuses its measurement)."""
    from qbench.pipeline.quantize import quantize
    from qbench.workspace import Workspace

    root = tmp_path_factory.mktemp("auto") / "default"
    shutil.copytree(tiny_baseline_root, root)
    ws = Workspace(root)
    options = QuantizeOptions(calib_batches=2, calib_batch_size=16, qat_max_batches=3)
    assert options.engine == "auto"
    records = quantize(ws, ["int8-ptq", "qat"], options)
    return ws, {r.mode: r for r in records}


def test_auto_measures_both_engines_here_and_records_the_numbers(auto_workspace):
    ws, records = auto_workspace
    record = records["int8-ptq"]
    choice = record.details["engine_choice"]
    assert choice["requested"] == "auto" and choice["engine"] in ("x86", "pt2e")
    assert choice["batch_sizes"] == [1, 64] and choice["threads"] >= 1
    assert choice["machine"] == int8_ptq.machine_key()
    assert "onnx-int8" in choice["not_candidates"]["onnxruntime"]
    for engine in ("x86", "pt2e"):
        fact = choice["candidates"][engine]
        assert set(fact["median_ms"]) == {"1", "64"} and all(v > 0 for v in fact["median_ms"].values())
        assert all(n >= int8_ptq.CHOICE_ROUNDS for n in fact["iterations"].values())
        assert set(fact["first_call_s"]) == {"1", "64"}
    assert int8_ptq.decide(choice["candidates"])[0] == choice["engine"]
    # the artifact is the chosen engine's, and nothing else is left in the variant's folder
    assert record.format == {"x86": "ao-eager-int8", "pt2e": "pt2e"}[choice["engine"]]
    assert sorted(p.name for p in ws.variant_dir("int8-ptq").iterdir()) == sorted(
        [record.artifact, "variant.json"]
    )
    assert VariantRecord.from_json(ws.variant_json("int8-ptq")).details["engine_choice"] == choice


def test_qat_reuses_the_measurement_of_int8_ptq(auto_workspace):
    _, records = auto_workspace
    ptq, qat = records["int8-ptq"].details["engine_choice"], records["qat"].details["engine_choice"]
    assert qat["measured_by"] == "int8-ptq" and qat["engine"] == ptq["engine"]
    assert qat["candidates"] == ptq["candidates"] and qat["why"].startswith("auto: int8-ptq's measurement")
    assert records["qat"].format == records["int8-ptq"].format


def test_reuse_needs_the_same_machine_key(auto_workspace, monkeypatch):
    from qbench.exporters.base import ExportContext

    ws, _ = auto_workspace
    ctx = ExportContext(
        workspace=ws,
        model=None,
        meta={"model": "tiny-cnn", "num_classes": 10, "input_size": 32},
        options=QuantizeOptions(),
        data_loader=lambda: None,
    )
    assert int8_ptq.reused_choice(ctx)["measured_by"] == "int8-ptq"
    monkeypatch.setattr(int8_ptq, "machine_key", lambda: {"cpu": "another", "threads": 64})
    assert int8_ptq.reused_choice(ctx) is None


def test_an_engine_that_fails_drops_out_with_its_reason(tiny_workspace, monkeypatch):
    """PT2E failing to convert leaves x86 as the only candidate: chosen without a measurement."""
    from qbench.pipeline.quantize import quantize

    real = int8_ptq.candidate

    def failing(engine, *args, **kwargs):
        if engine == "pt2e":
            raise RuntimeError("export failed\nsecond line")
        return real(engine, *args, **kwargs)

    monkeypatch.setattr(int8_ptq, "candidate", failing)
    (record,) = quantize(tiny_workspace, ["int8-ptq"], QuantizeOptions(calib_batches=1))
    choice = record.details["engine_choice"]
    assert choice["engine"] == "x86" and "candidates" not in choice
    assert choice["not_candidates"]["pt2e"] == "RuntimeError: export failed"
    assert "only engine" in choice["why"] and record.format == "ao-eager-int8"


def test_qat_alone_measures_for_itself(tiny_workspace, monkeypatch):
    """No int8-ptq measurement to reuse: qat measures quick conversions itself before training."""
    from qbench.pipeline.quantize import quantize

    seen = []

    def timed_stand_in(engine, ctx, batches, method, tmp, mode):
        seen.append((engine, len(batches), mode))
        return int8_ptq.Candidate(engine, None, lambda x: time.sleep(0.001 if engine == "x86" else 0.003))

    monkeypatch.setattr(int8_ptq, "candidate", timed_stand_in)
    options = QuantizeOptions(calib_batches=3, qat_max_batches=2)
    (record,) = quantize(tiny_workspace, ["qat"], options)
    choice = record.details["engine_choice"]
    assert seen == [("x86", 1, "qat"), ("pt2e", 1, "qat")]  # one calibration batch: speed needs no more
    assert "measured_by" not in choice and choice["engine"] == "x86"
    assert choice["candidates"]["pt2e"]["median_ms"]["1"] > choice["candidates"]["x86"]["median_ms"]["1"]
    assert record.format == "ao-eager-int8" and record.qat.history
