"""The TensorRT build side that needs no GPU: optimization profiles, the timing cache's place, the
verification rule, --batch-sizes, and the QDQ models TensorRT builds from, made for real from the
tiny baseline (ORT calibration and PT2E QAT) and run in ONNX Runtime on the CPU. The engines
themselves are built and run in tests/exporters/test_tensorrt.py (CUDA + TensorRT)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from qbench.errors import QBenchError
from qbench.exporters import tensorrt_export as trt_export


@pytest.fixture(scope="module")
def ctx(tiny_baseline_root, tmp_path_factory):
    """An ExportContext on a copy of the tiny baseline, with small calibration and QAT budgets."""
    from qbench.baselines.checkpoint import load_checkpoint
    from qbench.data.registry import load_data
    from qbench.exporters.base import ExportContext
    from qbench.records import DataConfig, QuantizeOptions
    from qbench.workspace import Workspace

    root = tmp_path_factory.mktemp("trt-build") / "default"
    shutil.copytree(tiny_baseline_root, root)
    ws = Workspace(root)
    model, meta = load_checkpoint(ws.model_path)
    options = QuantizeOptions(calib_batches=4, qat_epochs=1, qat_max_batches=6, qat_lr=1e-3)
    return ExportContext(
        workspace=ws,
        model=model,
        meta=meta,
        options=options,
        data_loader=lambda: load_data(DataConfig.from_dict(meta["data"])),
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("qdq")


@pytest.fixture(scope="module")
def fp32_onnx(ctx, folder) -> Path:
    from qbench.exporters.onnx_export import export_fp32_onnx

    export_fp32_onnx(ctx.model, ctx.example_input(2), folder / "model.onnx")
    return folder / "model.onnx"


def _qdq(ctx, source: Path, dest: Path, symmetric: bool, bias: bool) -> Path:
    from qbench.exporters.onnx_export import quantize_qdq

    quantize_qdq(ctx, source, dest, symmetric_activations=symmetric, quantize_bias=bias, reduce_range=False)
    return dest


@pytest.fixture(scope="module")
def tensorrt_qdq(ctx, fp32_onnx, folder) -> Path:
    """The QDQ model tensorrt-int8 builds: symmetric activations, float biases."""
    return _qdq(ctx, fp32_onnx, folder / "model-int8-qdq.onnx", symmetric=True, bias=False)


@pytest.fixture(scope="module")
def val_images(ctx) -> tuple[torch.Tensor, torch.Tensor]:
    """Real images of the val split and the FP32 baseline's logits on them."""
    images = trt_export._real_images(ctx, trt_export.VERIFY_IMAGES)
    with torch.inference_mode():
        return images, ctx.model(images)


def _ort_logits(path: Path, images: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images.numpy()})[0]


def _graph_facts(path: Path) -> tuple[list[np.dtype], list[np.ndarray]]:
    """Read independently of the checker: the dtypes of the constants every DequantizeLinear
    reads, and every Q/DQ zero point."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    nodes = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    dq_inputs = [
        inits[n.input[0]].dtype for n in nodes if n.op_type == "DequantizeLinear" and n.input[0] in inits
    ]
    zero_points = [inits[n.input[2]] for n in nodes if len(n.input) > 2]
    return dq_inputs, zero_points


# ---------------------------------------------------------------- optimization profiles


def test_one_profile_per_batch_size_sorted_and_deduplicated():
    profiles = trt_export.optimization_profiles([32, 1, 8, 32], 64)
    assert [p["index"] for p in profiles] == [0, 1, 2]
    assert [p["batch_size"] for p in profiles] == [1, 8, 32]
    for p in profiles:
        shape = [p["batch_size"], 3, 64, 64]
        assert p["min"] == p["opt"] == p["max"] == shape


def test_the_runners_profile_choice_reads_what_the_exporter_records():
    from qbench.runners.tensorrt_runner import profile_for

    details = {"profiles": trt_export.optimization_profiles([64, 1, 16], 32)}
    assert [profile_for(b, details, "tensorrt-int8") for b in (1, 16, 64)] == [0, 1, 2]
    with pytest.raises(QBenchError, match="--batch-sizes"):
        profile_for(8, details, "tensorrt-int8")


@pytest.mark.parametrize("sizes", [[], [0, 8], [-1]])
def test_profiles_need_positive_batch_sizes(sizes):
    with pytest.raises(QBenchError, match="--batch-sizes needs positive whole numbers"):
        trt_export.optimization_profiles(sizes, 32)


def test_padded_order_covers_every_image_in_whole_batches():
    order = trt_export.padded_order(10, 4)
    assert len(order) == 12 and order.tolist()[:10] == list(range(10)) and order.tolist()[10:] == [0, 1]
    assert trt_export.padded_order(8, 8).tolist() == list(range(8))
    assert trt_export.padded_order(3, 64).tolist() == [i % 3 for i in range(64)]


# ---------------------------------------------------------------- timing cache


def test_timing_cache_is_one_file_per_tensorrt_version_and_gpu(tmp_path):
    path = trt_export.timing_cache_path(tmp_path, "10.3.0", "NVIDIA H100 80GB HBM3")
    assert path == tmp_path / "tensorrt" / "timing-10.3.0-nvidia-h100-80gb-hbm3.cache"
    assert trt_export.timing_cache_path(tmp_path, "10.3.0", "NVIDIA A100-SXM4-40GB") != path
    assert trt_export.timing_cache_path(tmp_path, "10.4.0", "NVIDIA H100 80GB HBM3") != path
    odd = trt_export.timing_cache_path(tmp_path, "10/3", "../GPU *1*")
    assert odd.parent == tmp_path / "tensorrt" and "/" not in odd.name and ".." not in odd.name


def test_timing_cache_lives_in_qbenchs_cache_folder(monkeypatch, tmp_path):
    from qbench.workspace import CACHE_ENV, cache_dir

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv(CACHE_ENV)
    assert cache_dir() == Path.home() / ".cache" / "qbench"


# ---------------------------------------------------------------- the QDQ model of tensorrt-int8


def test_tensorrt_qdq_has_float_biases_and_zero_points_of_zero(tensorrt_qdq):
    dq_inputs, zero_points = _graph_facts(tensorrt_qdq)
    assert dq_inputs and all(dtype == np.int8 for dtype in dq_inputs)  # weights only, no int32 bias
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)
    facts = trt_export.check_tensorrt_qdq(tensorrt_qdq)
    assert facts["QuantizeLinear"] > 0 and facts["DequantizeLinear"] > facts["QuantizeLinear"]
    assert facts["int32_dequantize"] == 0
    # tiny-cnn: two convolutions and two linear layers (Gemm), each with per-channel weights
    assert facts["quantized_ops"]["Conv"] == 2 and facts["quantized_ops"]["Gemm"] == 2
    assert facts["quantized_weighted_ops"] == 4 and facts["per_channel_dequantize"] == 4


def test_tensorrt_qdq_runs_in_onnxruntime_and_agrees_with_pytorch(tensorrt_qdq, val_images):
    images, expected = val_images
    got = _ort_logits(tensorrt_qdq, images)
    agreement = float((got.argmax(1) == expected.numpy().argmax(1)).mean())
    assert agreement >= trt_export.INT8_MIN_AGREEMENT


@pytest.mark.parametrize(
    ("symmetric", "bias", "refusal"),
    [
        (True, True, r"dequantizes an int32 tensor .* QuantizeBias off"),
        (False, False, r"zero point .* symmetric activations"),
    ],
    ids=["int32-bias", "asymmetric-activations"],
)
def test_qdq_models_tensorrt_refuses_are_refused_with_one_sentence(
    ctx, fp32_onnx, tmp_path, symmetric, bias, refusal
):
    path = _qdq(ctx, fp32_onnx, tmp_path / "other.onnx", symmetric=symmetric, bias=bias)
    with pytest.raises(QBenchError, match=refusal) as caught:
        trt_export.check_tensorrt_qdq(path)
    assert str(caught.value).count(". ") == 0 and str(caught.value).endswith(".")


def test_a_model_without_qdq_is_refused(fp32_onnx):
    with pytest.raises(QBenchError, match="no QuantizeLinear/DequantizeLinear"):
        trt_export.check_tensorrt_qdq(fp32_onnx)


def test_onnx_int8_keeps_its_asymmetric_form_with_quantized_biases(ctx, fp32_onnx, tmp_path):
    """onnx-int8's options are unchanged by the TensorRT form: int32 biases and activation zero
    points that are not all 0."""
    path = _qdq(ctx, fp32_onnx, tmp_path / "onnx-int8.onnx", symmetric=False, bias=True)
    dq_inputs, zero_points = _graph_facts(path)
    assert np.int32 in dq_inputs
    assert any(z.any() for z in zero_points)


# ---------------------------------------------------------------- the QDQ model of tensorrt-qat


@pytest.fixture(scope="module")
def qat_qdq(ctx, folder):
    path = folder / "model-qat-qdq.onnx"
    info, converted = trt_export.qat_qdq_onnx(ctx, path)
    return path, info, converted


def test_qat_records_its_fine_tuning(qat_qdq, ctx):
    _, info, _ = qat_qdq
    assert info.epochs == 1 and info.batches_per_epoch == 6 and len(info.history) == 1
    assert info.observers_frozen_at_step == 3 and info.lr == ctx.options.qat_lr


def test_qat_qdq_is_a_model_tensorrt_builds(qat_qdq):
    path, _, _ = qat_qdq
    dq_inputs, zero_points = _graph_facts(path)
    assert dq_inputs and all(dtype == np.int8 for dtype in dq_inputs)
    assert zero_points and all(not z.any() for z in zero_points)
    facts = trt_export.check_tensorrt_qdq(path)
    assert facts["quantized_ops"]["Conv"] == 2 and facts["quantized_ops"]["Gemm"] == 2
    assert facts["per_channel_dequantize"] == 4


def test_qat_qdq_runs_in_onnxruntime_and_agrees_with_the_qat_model(qat_qdq, val_images):
    path, _, converted = qat_qdq
    images, _ = val_images
    got = _ort_logits(path, images)
    with torch.inference_mode():
        expected = converted(images).numpy()
    assert got.shape == expected.shape
    assert float((got.argmax(1) == expected.argmax(1)).mean()) >= 0.95
    # ORT requantizes inside its fused int8 kernels, the PT2E graph computes in float between Q/DQ
    assert np.abs(got - expected).max() < 0.1 * np.abs(expected).max()


# ---------------------------------------------------------------- the verification rule


def _check(batch: int, got: np.ndarray, expected: np.ndarray) -> dict:
    return {"batch_size": batch, "random": (got, expected), "real": (got, expected)}


FP16 = trt_export.Acceptance("tensorrt-fp16", "fp16", fix="fix it")
INT8 = trt_export.Acceptance("tensorrt-int8", "int8", fix="calibrate")


def test_fp16_is_accepted_within_the_scaled_tolerance_and_refused_beyond():
    expected = np.random.default_rng(0).normal(scale=10, size=(8, 10)).astype(np.float32)
    close = expected + 0.1  # below atol 0.05 x max |logit| (about 20)
    record = trt_export.judge_verification(FP16, [_check(8, close, expected)])
    assert record["max_abs_diff"] == pytest.approx(0.1, abs=1e-5) and record["top1_agree"] == 1.0
    assert record["profiles"][0]["random"]["atol"] > 0.1 and record["reference"].startswith("the FP32 model")
    far = expected.copy()
    far[0, 0] += 50
    with pytest.raises(
        QBenchError, match=r"tensorrt-fp16: the engine disagrees .* batch size 8 .*; fix it[.]$"
    ):
        trt_export.judge_verification(FP16, [_check(8, far, expected)])


def test_int8_is_judged_by_top1_agreement_on_real_images_at_every_batch_size():
    expected = np.eye(10, dtype=np.float32)
    good = expected.copy()
    good[0] = np.roll(expected[0], 1)  # 9 of 10 agree: at the threshold
    noise = {
        "batch_size": 1,
        "random": (expected[:1] + 5, expected[:1]),
        "real": (expected[:1], expected[:1]),
    }
    record = trt_export.judge_verification(INT8, [noise, _check(10, good, expected)])
    assert record["top1_agree"] == pytest.approx(0.9) and len(record["profiles"]) == 2
    assert record["max_abs_diff"] == pytest.approx(5)  # random inputs are recorded, not judged
    bad = np.roll(expected, 1, axis=1)
    with pytest.raises(
        QBenchError, match="agrees with the FP32 model on 0% of 10 real images at batch size 10"
    ):
        trt_export.judge_verification(INT8, [_check(10, bad, expected)])


def test_wrong_shapes_or_non_finite_outputs_are_refused():
    expected = np.eye(4, dtype=np.float32)
    nan = expected.copy()
    nan[0, 0] = np.nan
    for got in (expected[:2], nan):
        for accept in (FP16, INT8):
            with pytest.raises(QBenchError, match=r"wrong shape or non-finite values .* not accepted"):
                trt_export.judge_verification(accept, [_check(4, got, expected)])


# ---------------------------------------------------------------- flags and registration


def test_quantize_batch_sizes_flag_sets_the_engines_profiles():
    from qbench.cli.main import build_parser
    from qbench.cli.quantize import options_from_args
    from qbench.records import QuantizeOptions

    parser = build_parser()
    assert options_from_args(parser.parse_args(["quantize", "--batch-sizes", "16,1"])).batch_sizes == [16, 1]
    assert options_from_args(parser.parse_args(["quantize"])).batch_sizes == QuantizeOptions().batch_sizes
    with pytest.raises(SystemExit):
        parser.parse_args(["quantize", "--batch-sizes", "0,8"])


@pytest.mark.parametrize("mode", ["tensorrt-fp16", "tensorrt-int8", "tensorrt-qat"])
def test_tensorrt_modes_run_on_cuda_with_the_tensorrt_runner(mode):
    from qbench.exporters.base import EXPORTERS

    meta = EXPORTERS.entry(mode).meta
    assert meta["runner"] == "tensorrt" and meta["devices"] == ("cuda",)
    assert {"cuda", "tensorrt"} <= set(meta["requires"])


def test_tensorrt_qat_is_skipped_with_the_reason_where_it_cannot_run(ctx):
    from qbench import capabilities
    from qbench.exporters.base import EXPORTERS, run_export

    reason = capabilities.first_missing(EXPORTERS.entry("tensorrt-qat").meta["requires"])
    if reason is None:
        pytest.skip("CUDA and TensorRT are here: tests/exporters/test_tensorrt.py builds the engine")
    record = run_export("tensorrt-qat", ctx)
    assert record.status == "skipped" and record.skip_reason == reason
    assert not any(ctx.workspace.variant_dir("tensorrt-qat").glob("*.plan"))
