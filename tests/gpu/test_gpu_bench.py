"""The GPU path end to end on a real CUDA device (skipped elsewhere, with the reason): every
runner times its own stream, keeps host latency beside GPU compute time, reads the device's
telemetry, honours cuda:N, and skips what cannot run there."""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]

GPU_MODES = ["fp32", "fp16", "bf16", "onnx", "onnx-fp16", "onnx-int8"]


def _ort_cuda() -> bool:
    if importlib.util.find_spec("onnxruntime") is None:
        return False
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.fixture
def gpu_workspace(tiny_workspace):
    from qbench.pipeline.quantize import quantize
    from qbench.records import QuantizeOptions

    quantize(tiny_workspace, [*GPU_MODES, "int8-ptq"], QuantizeOptions(device="cuda", calib_batches=2))
    return tiny_workspace


def _bench(ws, **options):
    from qbench.pipeline.bench import bench
    from qbench.records import BenchOptions

    defaults = {"device": "cuda", "batch_sizes": [1, 64], "iters": 30, "warmup": 5}
    return {r.mode: r for r in bench(ws, BenchOptions(**{**defaults, **options}))}


def test_every_gpu_runner_keeps_both_clocks(gpu_workspace):
    results = _bench(gpu_workspace)
    for mode in GPU_MODES:
        if mode.startswith("onnx") and not _ort_cuda():
            assert results[mode].status == "skipped"
            continue
        r = results[mode]
        assert r.status == "ok", (mode, r.skip_reason)
        for lat in r.latency:
            assert lat.sync == "cuda-event" and lat.host is not None
            assert len(lat.host.samples_ms) == lat.n_samples
            # the events bracket the work inside the host's window: never longer than it
            assert lat.median_ms <= lat.host.median_ms * 1.01, mode
            assert lat.gpu is not None and lat.gpu.peak_reserved_mb is not None
        assert r.accuracy.agreement is None or r.accuracy.agreement.top1_agreement >= 90.0
    if _ort_cuda():
        assert results["onnx"].runner_info["providers"][0] == "CUDAExecutionProvider"
        assert results["onnx-int8"].emulated.startswith("emulated: ONNX Runtime's CUDA provider")
    # a CPU-only engine is skipped on the GPU with the reason, never run elsewhere or failed
    assert results["int8-ptq"].status == "skipped"
    assert "runs on cpu only" in results["int8-ptq"].skip_reason


def test_cuda_graph_replay_agrees_with_eager(gpu_workspace):
    eager = _bench(gpu_workspace, variants=["fp32"])["fp32"]
    graph = _bench(gpu_workspace, variants=["fp32"], cuda_graph=True)["fp32"]
    assert graph.status == "ok" and graph.runner_info["cuda_graph"] is True
    assert graph.accuracy.top1 == pytest.approx(eager.accuracy.top1)


def test_tf32_setting_is_applied_and_recorded(gpu_workspace):
    off = _bench(gpu_workspace, variants=["fp32"], tf32=False)["fp32"]
    assert off.runner_info["tf32"] == {"matmul": False, "cudnn_conv": False, "requested": "off"}
    on = _bench(gpu_workspace, variants=["fp32"], tf32=True)["fp32"]
    assert on.runner_info["tf32"]["cudnn_conv"] is True


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_second_device_is_used(gpu_workspace):
    r = _bench(gpu_workspace, variants=["fp32"], device="cuda:1")["fp32"]
    assert r.status == "ok" and r.device == "cuda:1"
    assert r.env is not None


def _ort_tensorrt() -> bool:
    if not _ort_cuda():
        return False
    import onnxruntime as ort

    return "TensorrtExecutionProvider" in ort.get_available_providers()


@pytest.mark.tensorrt
@pytest.mark.skipif(not _ort_tensorrt(), reason="ONNX Runtime has no TensorRT provider")
def test_onnx_tensorrt_provider_builds_cached_engines(tiny_workspace):
    from qbench.exporters.ort_tensorrt import ENGINE_CACHE, MODE
    from qbench.pipeline.quantize import quantize
    from qbench.records import QuantizeOptions

    (record,) = quantize(tiny_workspace, [MODE], QuantizeOptions(device="cuda", batch_sizes=[1, 64]))
    assert record.status == "ok", record.skip_reason
    assert record.details["verification"]["provider"] == "TensorrtExecutionProvider"
    result = _bench(tiny_workspace, variants=[MODE])[MODE]
    assert result.status == "ok" and result.runner_info["providers"][0] == "TensorrtExecutionProvider"
    assert any((tiny_workspace.variant_dir(MODE) / ENGINE_CACHE).iterdir())
