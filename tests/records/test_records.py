"""The record layer: strict reading, schema versions, and exact round trips through JSON."""

from __future__ import annotations

import json
import math

import pytest

from qbench.errors import QBenchError
from qbench.records import (
    SCHEMA_VERSION,
    BaselineRef,
    BenchOptions,
    BenchResult,
    BenchSettings,
    CalibrationInfo,
    LatencyStats,
    QuantizeOptions,
    RecordError,
    VariantRecord,
)


def _variant() -> VariantRecord:
    return VariantRecord(
        mode="int8-ptq",
        status="ok",
        runner="torch",
        description="static INT8",
        baseline=BaselineRef("tiny-cnn", 3, 32),
        ops_unit="GOP/s",
        calibration=CalibrationInfo("minmax", 2, 64, "abc", "train split"),
        options=QuantizeOptions(),
        details={"quantized_ops": {"Conv2d": 2}},
    )


def _latency(**overrides) -> LatencyStats:
    values = dict(
        batch_size=1, n_samples=3, warmup_iters=1, cold_ms=float("nan"), mean_ms=2.0, median_ms=2.0,
        median_ci_low_ms=1.0, median_ci_high_ms=3.0, std_ms=1.0, min_ms=1.0, max_ms=3.0, p90_ms=2.8,
        p95_ms=2.9, p99_ms=3.0, iqr_ms=1.0, cv=0.5, per_image_ms=2.0, throughput_ips=500.0, total_s=0.006,
    )  # fmt: skip
    return LatencyStats(**{**values, **overrides})


def test_round_trip_through_a_file(tmp_path):
    path = _variant().save_json(tmp_path / "variant.json")
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    assert VariantRecord.from_json(path) == _variant()


def test_nan_is_written_as_null_and_read_back_as_nan(tmp_path):
    result = BenchResult(
        mode="fp32", status="ok", settings=BenchSettings(BenchOptions()), latency=[_latency()]
    )
    path = result.save_json(tmp_path / "fp32.json")
    assert json.loads(path.read_text())["latency"][0]["cold_ms"] is None
    assert math.isnan(BenchResult.from_json(path).latency[0].cold_ms)
    assert BenchResult.from_json(path).size_mb is None  # derived, not stored as a field


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda d: d["baseline"].update(num_classes="three"),
            "variant.json: field baseline.num_classes is str",
        ),
        (lambda d: d.update(extra=1), "unknown field(s) extra"),
        (lambda d: d.pop("runner"), "the field 'runner' is missing"),
        (lambda d: d.update(status="done"), "expected one of 'ok', 'skipped', 'failed'"),
        (lambda d: d.update(schema_version=1), "an older qbench wrote it"),
        (lambda d: d.update(schema_version=SCHEMA_VERSION + 1), "upgrade qbench"),
        (lambda d: d["calibration"].update(batches=None), "field calibration.batches is null"),
    ],
)
def test_a_record_of_the_wrong_shape_is_refused_with_one_sentence(tmp_path, change, words):
    data = _variant().to_dict()
    change(data)
    path = tmp_path / "variant.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=None) as info:
        VariantRecord.from_json(path)
    message = str(info.value)
    assert words in message
    assert "rerun 'qbench quantize'" in message or "upgrade qbench" in message
    assert isinstance(info.value, QBenchError) and "\n" not in message


def test_corrupt_json_is_a_user_error(tmp_path):
    path = tmp_path / "fp32.json"
    path.write_text('{"mode": "fp3')
    with pytest.raises(QBenchError, match="not valid JSON"):
        BenchResult.from_json(path)


def test_configs_validate_on_construction():
    with pytest.raises(QBenchError, match="--iters"):
        BenchOptions(iters=0)
    with pytest.raises(QBenchError, match="--device"):
        QuantizeOptions(device="tpu")
