"""Which variant runs on which device, and the GPU plumbing that can be checked without a GPU:
the skip reasons, the CUDA timing loop's two clocks (with stand-in events), ONNX Runtime's
provider check on a real session, the TensorRT profile choice, and the flags' validation."""

from __future__ import annotations

import time

import pytest

from qbench.errors import BackendUnavailable, QBenchError
from qbench.harness import stats
from qbench.harness.sweep import skip_reason
from qbench.harness.timing import time_call
from qbench.records import BaselineRef, BenchOptions, VariantRecord


def _variant(mode: str, runner: str, devices: list[str], **fields) -> VariantRecord:
    return VariantRecord(
        mode=mode,
        status="ok",
        runner=runner,
        description="test",
        baseline=BaselineRef(model="tiny-cnn", num_classes=3, input_size=8),
        devices=devices,
        artifact="model",
        **fields,
    )


def test_gpu_only_engine_is_skipped_on_the_cpu_with_the_fix():
    reason = skip_reason(_variant("tensorrt-int8", "tensorrt", ["cuda"]), BenchOptions(device="cpu"))
    assert reason == "tensorrt-int8 runs on cuda only, not on cpu; bench it with --device cuda"


def test_cpu_only_engine_is_skipped_on_a_gpu_before_any_cuda_check():
    # checked before the CUDA requirement, so the reason is the same on a machine without a GPU
    reason = skip_reason(_variant("int8-ptq", "torch", ["cpu"]), BenchOptions(device="cuda:1"))
    assert reason == "int8-ptq runs on cpu only, not on cuda:1; bench it with --device cpu"


def test_runner_devices_hold_for_records_written_before_devices_were_recorded():
    # an older TensorRT record lists both kinds (the field's default): the runner still says cuda only
    reason = skip_reason(_variant("tensorrt-fp16", "tensorrt", ["cpu", "cuda"]), BenchOptions(device="cpu"))
    assert reason is not None and reason.startswith("tensorrt-fp16 runs on cuda only")


def test_modes_declare_their_devices():
    from qbench.exporters.base import EXPORTERS

    devices = {mode: EXPORTERS.entry(mode).meta["devices"] for mode in EXPORTERS.names()}
    assert devices["tensorrt-fp16"] == devices["tensorrt-int8"] == ("cuda",)
    for mode in ("int8-ptq", "qat", "int8-dynamic"):
        assert devices[mode] == ("cpu",), mode
    for mode in ("fp32", "fp16", "bf16", "onnx", "onnx-fp16", "onnx-int8"):
        assert devices[mode] == ("cpu", "cuda"), mode


def test_onnx_int8_on_the_cuda_provider_is_flagged_emulated():
    from qbench import capabilities

    assert capabilities.emulated("int8", "cuda", runner="onnxruntime").startswith(
        "emulated: ONNX Runtime's CUDA"
    )
    assert capabilities.emulated("int8", "cuda", runner="tensorrt") is None
    assert capabilities.emulated("fp16", "cuda:0", runner="torch") is None


class _Event:
    """torch.cuda.Event's interface on the host clock; remembers the stream it was recorded on."""

    def __init__(self) -> None:
        self.t = None
        self.streams: list[object] = []

    def record(self, stream=None) -> None:
        self.streams.append(stream)
        self.t = time.perf_counter()

    def synchronize(self) -> None:
        pass

    def elapsed_time(self, end: _Event) -> float:
        return (end.t - self.t) * 1e3


def test_cuda_loop_records_events_on_the_runner_stream_and_keeps_host_latency():
    made: list[_Event] = []

    def event() -> _Event:
        made.append(_Event())
        return made[-1]

    def sync() -> None:  # the device "finishes" 2 ms after the launch returned
        time.sleep(0.002)

    stream = object()
    run = time_call(lambda: None, sync, warmup=1, iters=12, cuda=True, stream=stream, event=event)
    assert run.sync == "cuda-event"
    assert len(run.samples_ms) == len(run.host_samples_ms) == 12
    assert all(e.streams and set(e.streams) == {stream} for e in made)
    # the events bracket the launch only here; host latency includes the wait for the device
    assert min(run.host_samples_ms) >= 2.0 > max(run.samples_ms)
    lat = stats.from_run(run, 4)
    assert lat.host is not None and lat.host.median_ms >= 2.0 and len(lat.host.samples_ms) == 12
    merged = stats.merge_repeats([lat, stats.from_run(run, 4)])
    assert len(merged.host.samples_ms) == 24


def test_cpu_loop_has_no_separate_host_latency():
    run = time_call(lambda: None, warmup=0, iters=5)
    assert run.host_samples_ms is None and stats.from_run(run, 1).host is None


def test_onnxruntime_silent_cpu_fallback_is_an_error(tmp_path, monkeypatch):
    """A CPU-only onnxruntime asked for CUDA: ONNX Runtime itself falls back to the CPU quietly."""
    import onnxruntime as ort

    from qbench.artifacts import onnx as onnx_format

    path = tmp_path / "m.onnx"
    _identity_model(path)
    real = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", *real])
    with pytest.raises(BackendUnavailable, match="did not load CUDAExecutionProvider"):
        onnx_format.open_session(path, "onnx", device="cuda")
    # the CPU session opens and runs on the provider asked for
    session = onnx_format.open_session(path, "onnx", device="cpu")
    assert session.get_providers() == ["CPUExecutionProvider"]


def test_provider_list_carries_device_stream_and_options(monkeypatch):
    import onnxruntime as ort

    from qbench.artifacts import onnx as onnx_format

    monkeypatch.setattr(
        ort,
        "get_available_providers",
        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    )
    cuda = onnx_format.providers_for("cuda:1", cuda_stream=1234, options={"use_tf32": "0"})
    assert cuda == [
        ("CUDAExecutionProvider", {"device_id": 1, "use_tf32": "0", "user_compute_stream": "1234"}),
        "CPUExecutionProvider",
    ]
    trt = onnx_format.providers_for("cuda", provider="tensorrt", options={"trt_fp16_enable": "True"})
    assert [p[0] if isinstance(p, tuple) else p for p in trt] == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert "trt_fp16_enable" not in trt[1][1]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(BackendUnavailable, match="pip install onnxruntime-gpu or pass --device cpu"):
        onnx_format.providers_for("cuda")


def _identity_model(path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["logits"])],
        "identity",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save_model(model, str(path))


def _profiles(*sizes: int) -> dict:
    return {
        "profiles": [
            {"index": i, "batch_size": b, "min": [b, 3, 8, 8], "opt": [b, 3, 8, 8], "max": [b, 3, 8, 8]}
            for i, b in enumerate(sizes)
        ]
    }


def test_tensorrt_profile_is_the_one_built_for_the_batch_size():
    from qbench.runners.tensorrt_runner import profile_for

    details = _profiles(1, 8, 64)
    assert [profile_for(b, details, "tensorrt-fp16") for b in (1, 8, 64)] == [0, 1, 2]
    with pytest.raises(
        QBenchError, match=r"no optimization profile for batch size 16 \(built for 1, 8, 64\).*--batch-sizes"
    ):
        profile_for(16, details, "tensorrt-fp16")


def test_tensorrt_profile_of_an_older_dynamic_engine():
    from qbench.runners.tensorrt_runner import profile_for

    old = {"profile": {"input": {"min": [1, 3, 8, 8], "opt": [64, 3, 8, 8], "max": [64, 3, 8, 8]}}}
    assert profile_for(16, old, "tensorrt-int8") == 0
    with pytest.raises(QBenchError, match="built for 1-64"):
        profile_for(128, old, "tensorrt-int8")


def test_cuda_graph_is_refused_where_it_cannot_apply(tmp_path):
    from qbench.runners.base import create_runner

    onnx_variant = _variant("onnx", "onnxruntime", ["cpu", "cuda"], format="onnx")
    with pytest.raises(QBenchError, match="--cuda-graph is not available with the onnxruntime runner"):
        create_runner(onnx_variant, tmp_path, device="cuda", cuda_graph=True)
    torch_variant = _variant("fp32", "torch", ["cpu", "cuda"], format="checkpoint")
    with pytest.raises(QBenchError, match="--cuda-graph is not available on a CUDA device"):
        create_runner(torch_variant, tmp_path, device="cpu", cuda_graph=True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"cuda_graph": True}, "--cuda-graph captures CUDA work"), ({"tf32": False}, "--tf32 sets GPU math")],
)
def test_gpu_flags_need_a_gpu_device(fields, message):
    with pytest.raises(QBenchError, match=message):
        BenchOptions(device="cpu", **fields)
    BenchOptions(device="cuda", **fields)  # spelled right; whether the machine has one is checked at start


def test_batch_sizes_make_only_engines_with_profiles_stale(tiny_workspace):
    from qbench.pipeline.quantize import quantize
    from qbench.pipeline.staleness import stale_variants
    from qbench.records import QuantizeOptions

    quantize(tiny_workspace, ["onnx"], QuantizeOptions(batch_sizes=[1, 8]))
    assert stale_variants(tiny_workspace, ["onnx"], QuantizeOptions(batch_sizes=[1, 8])) == {}
    assert stale_variants(tiny_workspace, ["onnx"], QuantizeOptions(batch_sizes=[1, 4])) == {}
    record = VariantRecord.from_json(tiny_workspace.variant_json("onnx"))
    record.details["profiles"] = _profiles(1, 8)["profiles"]
    record.save_json(tiny_workspace.variant_json("onnx"))
    assert (
        "batch sizes 1,8 -> 1,4"
        in stale_variants(tiny_workspace, ["onnx"], QuantizeOptions(batch_sizes=[1, 4]))["onnx"]
    )


def test_ort_tensorrt_options_cover_the_sweep_and_travel_with_the_variant(tmp_path):
    from qbench.artifacts.onnx import recorded_provider_options
    from qbench.exporters.ort_tensorrt import ENGINE_CACHE, _relative, provider_options

    options = provider_options(tmp_path / "a", 64, [8, 1, 32])
    assert options["trt_fp16_enable"] == "True"
    assert options["trt_profile_min_shapes"] == "input:1x3x64x64"
    assert options["trt_profile_opt_shapes"] == options["trt_profile_max_shapes"] == "input:32x3x64x64"
    recorded = _relative(options, tmp_path / "a")
    assert recorded["trt_engine_cache_path"] == recorded["trt_timing_cache_path"] == ENGINE_CACHE
    moved = _variant("onnx-tensorrt-fp16", "onnxruntime", ["cuda"], details={"provider_options": recorded})
    resolved = recorded_provider_options(moved, tmp_path / "b")
    assert resolved["trt_engine_cache_path"] == str(tmp_path / "b" / ENGINE_CACHE)
    assert {k: v for k, v in resolved.items() if "cache_path" not in k} == {
        k: v for k, v in options.items() if "cache_path" not in k
    }


def test_onnx_tensorrt_mode_is_skipped_without_its_provider(tiny_workspace):
    from qbench.pipeline.quantize import quantize
    from qbench.records import QuantizeOptions

    (record,) = quantize(tiny_workspace, ["onnx-tensorrt-fp16"], QuantizeOptions())
    if record.status == "skipped":  # a CPU-only onnxruntime, or no CUDA device
        assert "CUDA" in record.skip_reason or "TensorRT provider" in record.skip_reason
    assert record.devices == ["cuda"] and record.runner == "onnxruntime"


def test_tensorrt_engine_takes_the_accuracy_pass_at_its_built_sizes(tmp_path):
    from qbench.runners.tensorrt_runner import TensorRTRunner

    variant = _variant("tensorrt-fp16", "tensorrt", ["cuda"], details=_profiles(1, 8, 64))
    runner = TensorRTRunner(variant, tmp_path, device="cuda")  # nothing loaded: no GPU needed
    assert [runner.batch_size_for(n) for n in (1, 8, 14, 64, 100)] == [1, 8, 64, 64, 100]
    assert runner.max_batch_size() == 64


def test_accuracy_pass_fills_batches_up_to_a_size_the_runner_takes():
    import torch

    from qbench.harness.accuracy import collect_logits

    class FixedSizes:
        """A runner that takes batches of 4 only and returns each image's mean as its logit row."""

        def batch_size_for(self, n: int) -> int:
            return 4

        def max_batch_size(self) -> int:
            return 4

        def prepare(self, x):
            assert len(x) == 4
            return x

        def infer(self, x):
            return x.flatten(1).mean(1, keepdim=True).repeat(1, 3)

        def sync(self) -> None:
            pass

        def to_logits(self, out):
            return out

        def on_stream(self):
            import contextlib

            return contextlib.nullcontext()

    # batches of 8 from the loader: split to the runner's largest (4), the last 2 filled up to 4
    images = torch.arange(10 * 2 * 2, dtype=torch.float32).reshape(10, 1, 2, 2)
    dataset = torch.utils.data.TensorDataset(images, torch.zeros(10, dtype=torch.int64))
    logits, labels = collect_logits(FixedSizes(), dataset, batch_size=8)
    assert logits.shape == (10, 3) and len(labels) == 10
    torch.testing.assert_close(torch.as_tensor(logits[:, 0]), images.flatten(1).mean(1))


def test_cuda_graph_skips_a_runner_that_cannot_replay_one():
    reason = skip_reason(
        _variant("onnx", "onnxruntime", ["cpu", "cuda"]), BenchOptions(device="cuda", cuda_graph=True)
    )
    assert reason == "the onnxruntime runner cannot replay CUDA graphs; bench onnx without --cuda-graph"


def test_device_index_of_a_runner(tmp_path):
    from qbench.records.variant import device_index
    from qbench.runners.tensorrt_runner import TensorRTRunner

    assert device_index("cuda:2", lambda: 7) == 2 and device_index("cuda", lambda: 7) == 7

    assert (
        TensorRTRunner(_variant("tensorrt-fp16", "tensorrt", ["cuda"]), tmp_path, device="cuda:1").cuda_index
        == 1
    )


class _FakeContext:
    """The parts of TensorRT's IExecutionContext shape_context uses, refusing what it is told to."""

    def __init__(self, refuse_profile: bool = False, refuse_shape: bool = False) -> None:
        self.refuse_profile, self.refuse_shape = refuse_profile, refuse_shape
        self.addresses: dict[str, int] = {}

    def set_optimization_profile_async(self, index, stream) -> bool:
        if self.refuse_profile:  # TensorRT's binding raises instead of returning False
            raise RuntimeError("Error in set optimization profile async.")
        return True

    def set_input_shape(self, name, shape) -> bool:
        self.shape = shape
        return not self.refuse_shape

    def get_tensor_shape(self, name):
        return (self.shape[0], 3)

    def set_tensor_address(self, name, address) -> bool:
        self.addresses[name] = address
        return True


def _fake_plan(context: _FakeContext):
    from types import SimpleNamespace

    from qbench.artifacts.tensorrt_plan import Plan

    class Mode:
        INPUT, OUTPUT = "in", "out"

    trt = SimpleNamespace(
        TensorIOMode=Mode, DataType=SimpleNamespace(FLOAT="f", HALF="h", INT8="i8", INT32="i32", BOOL="b")
    )
    engine = SimpleNamespace(
        num_io_tensors=2,
        get_tensor_name=lambda i: ["input", "logits"][i],
        get_tensor_mode=lambda n: Mode.INPUT if n == "input" else Mode.OUTPUT,
        get_tensor_dtype=lambda n: "f",
        create_execution_context=lambda strategy=None: context,
    )
    return Plan(trt, None, None, engine)


def test_shape_context_binds_outputs_and_says_what_tensorrt_refused():
    from types import SimpleNamespace

    from qbench.artifacts.tensorrt_plan import shape_context

    stream = SimpleNamespace(cuda_stream=7, synchronize=lambda: None)
    context = _FakeContext()
    got, outputs = shape_context(_fake_plan(context), 2, (8, 3, 4, 4), stream, "cpu", "tensorrt-fp16")
    assert got is context and context.shape == (8, 3, 4, 4)
    assert outputs["logits"].shape == (8, 3) and context.addresses["logits"] == outputs["logits"].data_ptr()
    with pytest.raises(QBenchError, match=r"refused optimization profile 2 of tensorrt-fp16 \(Error in set"):
        shape_context(
            _fake_plan(_FakeContext(refuse_profile=True)), 2, (8, 3, 4, 4), stream, "cpu", "tensorrt-fp16"
        )
    with pytest.raises(QBenchError, match=r"refused input shape \(8, 3, 4, 4\) on profile 2 .*--batch-sizes"):
        shape_context(
            _fake_plan(_FakeContext(refuse_shape=True)), 2, (8, 3, 4, 4), stream, "cpu", "tensorrt-fp16"
        )
