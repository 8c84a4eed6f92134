"""Per-layer profiles (bench --profile): real runners' profilers on real tiny variants, the row
arithmetic on hand-made cases, and the name mapping of ONNX Runtime and TensorRT layers."""

from __future__ import annotations

import math

import pytest

from qbench.harness.profile import iterations_for, profile_sweep, profiled_batch_sizes, summarize
from qbench.records import BaselineRef, BenchResult, LatencyStats, LayerProfile, VariantRecord
from qbench.runners._onnx_layers import OnnxLayerMap, candidates, family, qualified
from qbench.runners._profiling import MODEL_LAYER, OpTime, RawProfile
from qbench.runners._torch_profile import op_family
from qbench.runners.onnxruntime_runner import node_times
from qbench.runners.tensorrt_runner import trt_kind
from qbench.workspace import Workspace
from tests.profile_workspace import BATCH_SIZES, PROFILED_MODES, profiled_workspace

KINDS = {"compute", "quantize", "dequantize", "layout"}
TINY_LAYERS = {"features.0", "features.3", "classifier.0", "classifier.2"}  # tiny-cnn's convs and linears


@pytest.fixture(scope="module")
def profiled_ws(tiny_baseline_root, tmp_path_factory) -> Workspace:
    return Workspace(profiled_workspace(tiny_baseline_root, tmp_path_factory))


@pytest.fixture(scope="module")
def profiled(profiled_ws) -> dict[str, BenchResult]:
    return {mode: BenchResult.from_json(profiled_ws.result_path(mode)) for mode in PROFILED_MODES}


def _rows(profile: LayerProfile, kind: str | None = None) -> dict[str, list]:
    found: dict[str, list] = {}
    for row in profile.layers:
        if kind is None or row.kind == kind:
            found.setdefault(row.layer, []).append(row)
    return found


# ---------------------------------------------------------------------------------------------
# real variants


def test_every_runner_records_profiles_named_by_the_models_layers(profiled):
    for mode, result in profiled.items():
        assert result.status == "ok", (mode, result.skip_reason)
        assert [p.batch_size for p in result.profiles] == BATCH_SIZES, mode
        for p in result.profiles:
            expected = "torch.profiler" if result.runner == "torch" else "ONNX Runtime"
            assert p.profiler.startswith(expected), (mode, p.profiler)
            assert set(_rows(p, "compute")) >= TINY_LAYERS, (mode, [r.layer for r in p.layers])
            assert {row.kind for row in p.layers} <= KINDS
            assert all(row.ms >= 0 and row.ops for row in p.layers)
            assert math.isclose(sum(row.share for row in p.layers), 1.0, rel_tol=1e-9)
            # the profile is set against the same process's timed loop, never a profiled call
            assert p.median_ms == result.latency_at(p.batch_size).median_ms
            assert math.isclose(p.overhead_ms, p.median_ms - p.layer_sum_ms, abs_tol=1e-12)
            assert math.isclose(p.layer_sum_ms, sum(row.ms for row in p.layers), rel_tol=1e-9)
            # each row is time inside a profiled call: together they fit in one (5% for timer granularity)
            assert 0 < p.layer_sum_ms <= p.profiled_ms * 1.05, (mode, p.layer_sum_ms, p.profiled_ms)
            assert p.within_tolerance == (abs(p.overhead_ms) <= 0.10 * p.median_ms)


def test_precision_and_quantize_rows_show_what_stayed_float(profiled):
    fp32 = profiled["fp32"].profiles[0]
    assert {row.precision for row in fp32.layers} == {"float32"}
    assert not _rows(fp32, "quantize") and not _rows(fp32, "dequantize")
    assert _rows(fp32, "compute")["features.0"][0].op_types == ["aten::conv2d"]

    int8 = profiled["int8-ptq"].profiles[0]
    conv = _rows(int8, "compute")["features.0"][0]
    assert conv.precision == "int8" and conv.op_types[0].startswith("quantized::conv2d")
    assert "quant" in _rows(int8, "quantize") and "dequant" in _rows(int8, "dequantize")
    assert _rows(int8, "quantize")["quant"][0].precision == "float32→int8"
    assert _rows(int8, "dequantize")["dequant"][0].precision == "int8→float32"
    # the QuantWrapper's 'module.' prefix is gone: the eager INT8 rows read like FP32's
    assert not any(row.layer.startswith("module.") for row in int8.layers)

    onnx_int8 = profiled["onnx-int8"].profiles[-1]
    compute = _rows(onnx_int8, "compute")
    assert (
        compute["features.0"][0].op_types == ["QLinearConv"] and compute["features.0"][0].precision == "int8"
    )
    assert compute["classifier.0"][0].precision == "int8"
    assert "(input)" in _rows(onnx_int8, "quantize")  # the input's QuantizeLinear
    onnx = profiled["onnx"].profiles[-1]
    assert {row.precision for row in onnx.layers if row.kind == "compute"} == {"float32"}
    assert not _rows(onnx, "quantize")


def test_profile_off_by_default_and_round_trips(profiled, tiny_baseline_root, tmp_path_factory):
    result = profiled["int8-ptq"]
    assert result.settings.options.profile is True
    again = BenchResult.from_dict(result.to_dict())
    assert again.profiles == result.profiles
    assert result.to_dict()["profiles"][0]["layers"][0]["op_types"]  # the derived field is written
    from qbench.records import BenchOptions

    assert BenchOptions().profile is False


def test_cli_flag_profiles_in_the_bench_subprocess(tiny_workspace, qbench_cli):
    runs = str(tiny_workspace.root.parent)
    args = ("--iters", "3", "--warmup", "1", "--batch-sizes", "1,2,3", "--threads", "1", "--no-accuracy")
    proc = qbench_cli("bench", "--runs-dir", runs, "--profile", *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = BenchResult.from_json(tiny_workspace.result_path("fp32"))
    assert [p.batch_size for p in result.profiles] == [1, 3]  # the smallest and the largest
    assert result.settings.isolation.startswith("fresh process")
    assert {row.layer for row in result.profiles[0].layers} >= TINY_LAYERS


# ---------------------------------------------------------------------------------------------
# the arithmetic, on hand-made profiles


def test_summarize_groups_by_layer_and_kind_with_per_call_medians():
    raw = RawProfile(
        profiler="test",
        iterations=3,
        wall_ms=[1.0, 1.2, 9.0],
        ops=[
            OpTime("conv", "aten::conv2d", [0.5, 0.4, 7.0], calls=3),  # one disturbed call: median 0.5
            OpTime("conv", "aten::contiguous", [0.1, 0.1, 0.1], calls=3, kind="layout"),
            OpTime("quant", "aten::quantize_per_tensor", [0.05, 0.05, 0.05], calls=3, kind="quantize"),
            OpTime("conv", "aten::relu_", [0.1, 0.2, 0.3], calls=6),
        ],
    )
    p = summarize(raw, batch_size=2, median_ms=1.0)
    assert [(r.layer, r.kind) for r in p.layers] == [
        ("conv", "compute"),
        ("conv", "layout"),
        ("quant", "quantize"),
    ]
    conv = p.layers[0]
    assert conv.ms == pytest.approx(0.5 + 0.2) and conv.op_types == ["aten::conv2d", "aten::relu_"]
    assert conv.ops[1].calls == 2.0  # occurrences per call
    assert p.layer_sum_ms == pytest.approx(0.85) and p.overhead_ms == pytest.approx(0.15)
    assert p.layers[0].share == pytest.approx(0.7 / 0.85) and p.profiled_ms == 1.2
    assert not p.within_tolerance  # 15% of the latency is in no layer
    assert summarize(raw, batch_size=2, median_ms=0.9).within_tolerance  # 5.6% below the sum
    assert summarize(raw, batch_size=2, median_ms=0.7).overhead_ms == pytest.approx(-0.15)


def test_batch_sizes_and_iterations():
    assert profiled_batch_sizes([8, 1, 64, 16]) == [1, 64]
    assert profiled_batch_sizes([4]) == [4] and profiled_batch_sizes([]) == []
    assert iterations_for(0.1) == 20 and iterations_for(250.0) == 4 and iterations_for(2000.0) == 3


def test_a_runner_without_profiler_leaves_a_note_not_a_failure():
    from qbench.runners.base import Runner

    class Plain(Runner):
        name = "plain"

        def load(self) -> None: ...

        def infer(self, native_input):
            return native_input

    class Broken(Plain):
        def profile(self, native_input, iterations):
            raise RuntimeError("boom")

    variant = VariantRecord(
        mode="x", status="ok", runner="plain", description="", baseline=BaselineRef("tiny-cnn", 10, 32)
    )
    latency = [_latency(1), _latency(8)]
    profiles, notes = profile_sweep(Plain(variant, "."), lambda bs: bs, latency)
    assert profiles == [] and notes == ["per-layer profile: n/a (the plain runner has no per-layer profiler)"]
    profiles, notes = profile_sweep(Broken(variant, "."), lambda bs: bs, latency)
    assert profiles == [] and notes[0] == "per-layer profile at batch 1 failed: RuntimeError: boom"


def _latency(batch_size: int) -> LatencyStats:
    return LatencyStats(
        batch_size, 3, 1, 1.0, 1.0, 1.0, 0.9, 1.1, 0.1, 0.9, 1.1, 1.1, 1.1, 1.1, 0.1, 0.1, 1.0, 1000.0, 0.01
    )


# ---------------------------------------------------------------------------------------------
# name mapping


def test_name_helpers():
    assert candidates("node_conv2d_token_17_kernel_time") == ["node_conv2d_token_17", "node_conv2d"]
    assert candidates("fused node_linear") == ["node_linear"]
    assert candidates("relu_1_nchwc") == ["relu_1_nchwc", "relu_1"]
    assert candidates("relu_QuantizeLinear") == ["relu_QuantizeLinear", "relu"]
    assert [family(t) for t in ("QLinearConv", "FusedConv", "ConvInteger", "QGemm", "NhwcMaxPool")] == [
        "Conv", "Conv", "Conv", "Gemm", "MaxPool",
    ]  # fmt: skip
    assert qualified(["features", "features.0"]) == "features.0"
    assert qualified(["layer1", "layer1.0", "conv1"]) == "layer1.0.conv1"
    assert op_family("onednn::qconv_pointwise") == op_family("aten.conv2d.default") == "conv"
    assert op_family("onednn::qlinear_pointwise") == op_family("aten.linear.default") == "linear"
    assert op_family("quantized::max_pool2d") == op_family("aten.max_pool2d.default") == "max_pool2d"
    assert trt_kind("Reformatting CopyNode for Input Tensor 0 to node_conv2d") == "layout"
    assert trt_kind("input_QuantizeLinear") == "quantize"
    assert trt_kind("features.0.weight_DequantizeLinear + node_conv2d + node_relu") == "compute"


def test_onnx_names_map_back_to_torch_layers(profiled_ws):
    import onnx

    model = onnx.load(str(profiled_ws.variant_dir("onnx") / "model.onnx"))
    fp32 = OnnxLayerMap(model)
    nodes = {n.op_type: [m for m in model.graph.node if m.op_type == n.op_type] for n in model.graph.node}
    conv, relu = nodes["Conv"][0], nodes["Relu"][0]
    assert relu.input[0] == conv.output[0]  # features.0 -> features.1
    # ONNX Runtime's names as its profiler reports them: a Conv+Relu fused into an NCHWc conv is
    # named after the Relu's output; fused Gemms get a prefix; QDQ-fused nodes a token suffix
    assert fp32.layer(f"{relu.output[0]}_nchwc_kernel_time", "Conv") == "features.0"
    assert fp32.layer(f"{relu.output[0]}_nchwc_kernel_time", "Relu") == "features.1"
    assert fp32.layer(f"{nodes['MaxPool'][1].output[0]}_nchwc", "MaxPool") == "features.5"
    assert fp32.layer(f"fused {nodes['Gemm'][0].name}", "FusedGemm") == "classifier.0"
    assert fp32.layer(nodes["Reshape"][0].name, "Reshape") == MODEL_LAYER  # torch.flatten in forward()
    assert fp32.layer("ReorderOutput_token_6", "ReorderOutput") is None  # inserted: placed by order
    assert fp32.layer_of_parts(f"{conv.name} + {relu.name}") == "features.0"  # TensorRT's fused name

    qdq = onnx.load(str(profiled_ws.variant_dir("onnx-int8") / "model-int8.onnx"))
    int8 = OnnxLayerMap(qdq)
    second_conv = [n for n in qdq.graph.node if n.op_type == "Conv"][1]
    assert int8.layer(f"{second_conv.name}_token_21", "QLinearConv") == "features.3"
    assert int8.layer("input_QuantizeLinear", "QuantizeLinear") == "(input)"
    output_dq = next(n for n in qdq.graph.node if n.output[0] == qdq.graph.output[0].name)
    assert int8.layer(output_dq.name, "DequantizeLinear") == "classifier.2"
    assert int8.inserted("Transpose_token_26") and not int8.inserted(f"{second_conv.name}_token_21")


def test_inserted_nodes_join_their_neighbours():
    class Names:
        def layer(self, name: str, op_type: str):
            return {"conv_nchwc": "features.0", "pool": "features.2"}.get(name.removesuffix("_kernel_time"))

        def inserted(self, name: str) -> bool:
            return name.startswith("Transpose")

    def event(name: str, op: str, ts: int, dur: int = 10) -> dict:
        args = {"op_name": op, "input_type_shape": [{"float": [1]}], "output_type_shape": [{"float": [1]}]}
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur, "args": args}

    events = [{"name": "model_run", "ts": 0, "dur": 100}]  # a warm-up run, left out
    events += [event("conv_nchwc", "Conv", 5)]
    events += [{"name": "model_run", "ts": 200, "dur": 100}]
    events += [
        event("Transpose", "Transpose", 205, 3),
        event("conv_nchwc", "Conv", 210),
        event("ReorderOutput", "ReorderOutput", 220, 4),
        event("pool", "MaxPool", 230),
    ]
    ops = node_times(events, 1, Names())
    assert [(o.layer, o.op_type, o.kind, o.ms) for o in ops] == [
        ("features.0", "Transpose", "layout", [0.003]),  # feeds the conv
        ("features.0", "Conv", "compute", [0.01]),
        ("features.0", "ReorderOutput", "layout", [0.004]),  # converts the conv's output
        ("features.2", "MaxPool", "compute", [0.01]),
    ]
    assert ops[1].precision == "float32"


def test_run_leaves_emulated_variants_unprofiled(tiny_workspace, monkeypatch):
    """qbench run's profile_emulated=False: a variant flagged emulated is timed but not profiled
    (its layer times would show the conversions); bench --profile's default profiles it."""
    from qbench import capabilities
    from qbench.harness.sweep import bench_variant
    from qbench.pipeline.quantize import quantize
    from qbench.records import BenchOptions, QuantizeOptions

    quantize(tiny_workspace, ["fp16"], QuantizeOptions())
    reason = "emulated: this CPU has no avx512_fp16 or amx_fp16 (as on an AVX2-only CPU)"
    monkeypatch.setattr(capabilities, "emulated", lambda *args, **kwargs: reason)
    common = {"batch_sizes": [1, 2], "iters": 3, "warmup": 1, "profile": True, "accuracy": False}
    skipped = bench_variant(tiny_workspace, "fp16", BenchOptions(profile_emulated=False, **common))
    assert skipped.ok and skipped.emulated == reason and skipped.profiles == []
    assert any(n.startswith("per-layer profile: not taken (emulated:") for n in skipped.notes)
    taken = bench_variant(tiny_workspace, "fp16", BenchOptions(**common))
    assert [p.batch_size for p in taken.profiles] == [1, 2]
