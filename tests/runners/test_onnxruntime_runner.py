"""The ONNX Runtime runner on small hand-built ONNX graphs (FP32 and FP16 inputs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qbench.errors import QBenchError
from qbench.records import BaselineRef, VariantRecord
from qbench.runners.base import create_runner


def _variant(artifact: str, mode: str = "onnx") -> VariantRecord:
    return VariantRecord(
        mode=mode,
        status="ok",
        runner="onnxruntime",
        description="hand-built graph",
        baseline=BaselineRef(model="tiny-cnn", num_classes=3, input_size=1),
        artifact=artifact,
        format="onnx",
        dtype="float32",
    )


def _scale_model(path, elem_type):
    """y = 2 * x over a dynamic batch, in the given ONNX element type."""
    import onnx
    from onnx import TensorProto, helper

    dtype = np.float16 if elem_type == TensorProto.FLOAT16 else np.float32
    two = helper.make_tensor("two", elem_type, [], np.array(2, dtype=dtype).tobytes(), raw=True)
    graph = helper.make_graph(
        [helper.make_node("Mul", ["input", "two"], ["logits"])],
        "scale",
        [helper.make_tensor_value_info("input", elem_type, ["batch", 3])],
        [helper.make_tensor_value_info("logits", elem_type, ["batch", 3])],
        [two],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save_model(model, str(path))
    return _variant(path.name)


@pytest.mark.parametrize("fp16", [False, True])
def test_runner_runs_and_returns_float32_logits(tmp_path, fp16):
    from onnx import TensorProto

    variant = _scale_model(tmp_path / "m.onnx", TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT)
    x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    with create_runner(variant, tmp_path, threads=1) as runner:
        native = runner.prepare(x)
        assert native.dtype == (np.float16 if fp16 else np.float32)
        logits = runner.to_logits(runner.infer(native))
        facts = runner.describe()
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, 2 * x)
    assert facts["providers"] == ["CPUExecutionProvider"]
    assert facts["intra_op_num_threads"] == 1 and facts["inter_op_num_threads"] == 1


def test_corrupt_onnx_file_names_the_fix(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07garbage that is not a protobuf")
    variant = _variant("m.onnx", mode="onnx-fp16")
    with pytest.raises(QBenchError, match="corrupt or truncated: rerun 'qbench quantize --mode onnx-fp16'"):
        create_runner(variant, tmp_path).load()


def test_cuda_without_provider_is_unavailable(tmp_path):
    import onnxruntime as ort
    from onnx import TensorProto

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has a CUDA provider")
    variant = _scale_model(tmp_path / "m.onnx", TensorProto.FLOAT)
    # without a GPU the missing device is said first; with one, the missing provider
    reason = (
        "onnxruntime-gpu" if torch.cuda.is_available() else "no CUDA device is visible; pass --device cpu"
    )
    with pytest.raises(QBenchError, match=reason):
        create_runner(variant, tmp_path, device="cuda").load()
