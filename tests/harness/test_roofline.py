"""Roofline arithmetic against hand-computed cases, and the activation traffic of a small model."""

from __future__ import annotations

import math

import pytest
from torch import nn

from qbench.harness import roofline, stats
from qbench.records import (
    BandwidthMeasurement,
    BaselineRef,
    BenchOptions,
    BenchResult,
    BenchSettings,
    DeviceLimits,
    MachineLimits,
    ModelFacts,
    PeakMeasurement,
    Roofline,
    VariantRecord,
)
from qbench.workspace import CACHE_ENV

# the hand-computed model: 0.5 G MACs (1 G operations) per image, 100 MB of weights,
# 10 MB of activations per image, on a machine with 50 GB/s and a 1000 G op/s peak
MACS, WEIGHTS, ACTS, BW, PEAK = 500_000_000, 100_000_000, 10_000_000, 50.0, 1000.0


def test_batch_one_is_memory_bound_and_its_floor_is_the_weight_read():
    p = roofline.point(1, 4.0, MACS, WEIGHTS, ACTS, PEAK, BW)
    assert p.bytes_per_call == 110_000_000
    assert p.ops_per_call == 1_000_000_000
    assert p.intensity == pytest.approx(1e9 / 110e6)  # 9.09 operations per byte
    # 9.09 op/B x 50 GB/s = 454.5 G op/s, below the 1000 G op/s peak: the memory roof applies
    assert p.bound == "memory"
    assert p.bound_rate == pytest.approx(1e9 / 110e6 * 50)
    assert p.achieved_rate == pytest.approx(250.0)  # 1 G operations in 4 ms
    assert p.fraction == pytest.approx(250.0 / (1e9 / 110e6 * 50))  # 0.55
    assert p.bound_ms == pytest.approx(2.2)  # 110 MB at 50 GB/s
    assert p.over_floor == pytest.approx(2.0)  # 4 ms over the 2 ms it takes to read 100 MB once


def test_a_large_batch_is_compute_bound():
    p = roofline.point(64, 100.0, MACS, WEIGHTS, ACTS, PEAK, BW)
    assert p.bytes_per_call == 100_000_000 + 64 * 10_000_000
    assert p.ops_per_call == 64_000_000_000
    assert p.intensity == pytest.approx(64e9 / 740e6)  # 86.5 op/B: 4324 G op/s memory roof
    assert p.bound == "compute"
    assert p.bound_rate == PEAK
    assert p.achieved_rate == pytest.approx(640.0)
    assert p.fraction == pytest.approx(0.64)
    assert p.bound_ms == pytest.approx(64.0)  # 64 G operations at 1000 G op/s
    assert p.over_floor == pytest.approx(50.0)


def test_without_a_peak_only_the_memory_roof_bounds():
    p = roofline.point(64, 100.0, MACS, WEIGHTS, ACTS, None, BW)
    assert p.bound == "memory"
    assert p.bound_rate == pytest.approx(64e9 / 740e6 * 50)
    assert p.bound_ms == pytest.approx(740e6 / 50e9 * 1e3)  # 14.8 ms


def _latency(batch_size: int, median_ms: float):
    return stats.latency_stats([median_ms] * 5, batch_size, total_s=5 * median_ms / 1e3)


def _limits(**peaks: float) -> DeviceLimits:
    limits = DeviceLimits(
        device="cpu",
        name="test CPU",
        bandwidth=BandwidthMeasurement(
            gbytes_per_s=BW,
            passes_gbytes_per_s=[BW],
            method="hand-made",
            library="none",
            buffer_bytes=2**30,
            bytes_per_pass=2**30,
            threads=2,
        ),
    )
    for key, rate in peaks.items():
        precision, _, library = key.partition("_")
        unit = "GOP/s" if precision == "int8" else "GFLOP/s"
        limits.peaks.append(
            PeakMeasurement(precision, library, f"{library} op", rate, unit, [512] * 3, 1.0, 3, 2)
        )
    limits.peaks.append(PeakMeasurement("fp16", "x", "x op", None, "GFLOP/s", error="not built"))
    return limits


def _variant(weights: str | None, activations: str | None, dtype: str = "float32") -> VariantRecord:
    return VariantRecord(
        mode="m",
        status="ok",
        runner="torch",
        description="",
        baseline=BaselineRef(model="x", num_classes=10, input_size=32),
        weights=weights,
        activations=activations,
        dtype=dtype,
    )


FACTS = ModelFacts(
    name="x",
    num_classes=10,
    input_size=32,
    total_params=WEIGHTS,  # 100 M parameters: 100 MB at one byte each
    trainable_params=WEIGHTS,
    flops=MACS,
    fp32_size_bytes=4 * WEIGHTS,
    activation_elements=ACTS,  # 10 M elements: 10 MB at one byte each
)


def test_an_int8_variant_uses_the_best_int8_peak_and_one_byte_per_weight_and_activation():
    limits = _limits(int8_torch=400.0, int8_ort=PEAK, fp32_torch=100.0)
    roof = roofline.build(
        _variant("int8", "uint8"), FACTS, [_latency(64, 100.0), _latency(1, 4.0)], limits, artifact_bytes=123
    )
    assert isinstance(roof, Roofline)
    assert roof.precision == "int8" and roof.unit == "GOP/s"
    assert roof.peak_rate == PEAK and "ort op" in roof.peak_method  # the best of the two int8 libraries
    assert roof.weight_bytes == WEIGHTS and "x 1 byte (int8)" in roof.weight_bytes_method
    assert roof.activation_bytes_per_image == ACTS
    assert roof.floor_ms == pytest.approx(2.0)
    assert [p.batch_size for p in roof.points] == [1, 64]  # sorted
    assert roof.at(1).fraction == pytest.approx(0.55)
    assert roof.at(64).fraction == pytest.approx(0.64)
    assert roof.knee_batch_size == 64  # 640 img/s against 250 img/s at batch 1
    assert roof.limits is limits
    assert roof.notes == []


def test_fp32_counts_four_bytes_and_a_mixed_variant_reads_its_artifact():
    limits = _limits(fp32_torch=100.0)
    fp32 = roofline.build(_variant("fp32", "fp32"), FACTS, [_latency(1, 10.0)], limits)
    assert fp32.precision == "fp32" and fp32.peak_rate == 100.0
    assert fp32.weight_bytes == 4 * WEIGHTS
    assert fp32.activation_bytes_per_image == 4 * ACTS
    assert fp32.floor_ms == pytest.approx(8.0)  # 400 MB at 50 GB/s

    dynamic = _variant("int8 (Linear only; convolutions stay fp32)", "fp32, quantized to uint8 per batch")
    mixed = roofline.build(dynamic, FACTS, [_latency(1, 10.0)], limits, artifact_bytes=250_000_000)
    assert mixed.precision == "fp32"  # the convolutions' arithmetic
    assert mixed.weight_bytes == 250_000_000 and "artifact on disk" in mixed.weight_bytes_method
    assert any("mixed precision" in n for n in mixed.notes)


def test_a_precision_without_a_measured_peak_is_bounded_by_memory_only():
    roof = roofline.build(_variant("fp16", "fp16"), FACTS, [_latency(1, 10.0)], _limits(fp32_torch=100.0))
    assert roof.peak_rate is None and roof.points[0].bound == "memory"
    assert any("no fp16 peak" in n for n in roof.notes)
    no_bandwidth = _limits(fp32_torch=100.0)
    no_bandwidth.bandwidth = None
    assert roofline.build(_variant("fp32", "fp32"), FACTS, [_latency(1, 1.0)], no_bandwidth) is None


def test_refresh_recomputes_the_points_from_merged_latencies():
    roof = roofline.build(_variant("int8", "uint8"), FACTS, [_latency(1, 4.0)], _limits(int8_x=PEAK))
    roofline.refresh_points(roof, MACS, [_latency(1, 2.2)])  # a faster median after merging repeats
    assert roof.at(1).fraction == pytest.approx(1.0)
    assert roof.at(1).over_floor == pytest.approx(1.1)


@pytest.mark.parametrize(
    ("text", "token"),
    [("int8 (Linear only; convolutions stay fp32)", "int8"), ("fp32, quantized", "fp32"), (None, None)],
)
def test_precision_token(text, token):
    assert roofline.precision_token(text) == token


def test_activation_elements_counts_what_conv_linear_and_pooling_layers_read_and_write():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),  # reads 3x8x8 = 192, writes 4x8x8 = 256
        nn.ReLU(),  # element-wise: taken as fused
        nn.MaxPool2d(2),  # reads 256, writes 4x4x4 = 64
        nn.Flatten(),
        nn.Linear(64, 10),  # reads 64, writes 10
    )
    assert roofline.activation_elements(model, 8) == 192 + 256 + 256 + 64 + 64 + 10
    assert model.training  # the model's mode is restored
    assert not any(m._forward_hooks for m in model.modules())


def test_a_nan_latency_is_not_a_point():
    lat = _latency(1, 4.0)
    lat.median_ms = math.nan
    roof = roofline.build(_variant("int8", "uint8"), FACTS, [lat], _limits(int8_x=PEAK))
    assert roof.points == []
    assert math.isfinite(roof.floor_ms)


def _result(latency) -> BenchResult:
    from qbench import env

    return BenchResult(
        mode="int8-ptq",
        status="ok",
        settings=BenchSettings(options=BenchOptions()),
        model=FACTS,
        variant=_variant("int8", "uint8"),
        latency=latency,
        env=env.capture(),
    )


def test_annotate_uses_the_cached_limits_of_this_machine(tmp_path, monkeypatch):
    from qbench.harness import limits

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    result = _result([_latency(1, 4.0)])
    cached = MachineLimits(
        fingerprint=result.env.fingerprint(),
        machine="test",
        measured="2026-01-01T00:00:00",
        seconds=1.0,
        quick=True,
        cpu=_limits(int8_x=PEAK),
    )
    cached.save_json(limits.cache_path(cached.fingerprint))
    roofline.annotate(result)
    assert result.roofline is not None and result.roofline.limits_fingerprint == cached.fingerprint
    assert result.roofline.limits_measured == "2026-01-01T00:00:00 (quick measurement)"
    assert result.roofline.at(1).fraction == pytest.approx(0.55)
    assert not any("measured now" in n for n in result.notes)


def test_annotate_off_and_a_bad_setting_leave_a_reason_not_an_error(tmp_path, monkeypatch):
    from qbench.harness import limits

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    monkeypatch.setenv(limits.BENCH_ENV, "off")
    result = _result([_latency(1, 4.0)])
    roofline.annotate(result)
    assert result.roofline is None and "roofline: n/a (not measured: QBENCH_LIMITS=off)" in result.notes
    assert not (tmp_path / "limits").exists()
    monkeypatch.setenv(limits.BENCH_ENV, "sometimes")
    result = _result([_latency(1, 4.0)])
    roofline.annotate(result)
    assert result.roofline is None and any("QBENCH_LIMITS='sometimes'" in n for n in result.notes)
