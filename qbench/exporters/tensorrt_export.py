"""TensorRT engines built from ONNX (needs CUDA and TensorRT 10+), as strongly typed networks:
the precision comes from the graph, not from builder flags or implicit calibrators (deprecated in
TensorRT 10, removed in 11).

- ``tensorrt-fp16``: the FP16 ONNX of the onnx-fp16 variant (FP32 I/O).
- ``tensorrt-int8``: an explicit QDQ ONNX calibrated by ONNX Runtime's quantize_static in the
  form TensorRT builds: int8 activations with zero point 0, per-channel symmetric weights, float
  biases (TensorRT's parser refuses the int32 bias DequantizeLinear ONNX Runtime writes by default).
- ``tensorrt-qat``: the same QDQ form with quantization parameters learned by quantization-aware
  training (PT2E QAT with a symmetric int8 config, exported by torch.onnx, whose torchlib maps
  the quantized_decomposed ops to QuantizeLinear/DequantizeLinear).

The QDQ ONNX is kept beside its engine (``details["qdq_onnx"]``) and checked by
:func:`check_tensorrt_qdq` before TensorRT sees it. Every engine has one optimization profile per
batch size of ``QuantizeOptions.batch_sizes`` (min = opt = max, so kernels are tuned for each
size; the runner picks the profile by batch size), reuses tactic timings from a timing cache in
qbench's cache folder, and is run on every profile and compared with PyTorch before it is
accepted. Nothing lands in the variant's folder before that check passed.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qbench.artifacts import tensorrt_plan
from qbench.errors import QBenchError
from qbench.exporters._tensorrt_qat import qat_qdq_onnx
from qbench.exporters._tensorrt_qdq import check_tensorrt_qdq
from qbench.exporters.base import Converted, ExportContext, register_exporter
from qbench.exporters.onnx_export import (
    INPUT,
    TOLERANCES,
    fp32_onnx,
    quantize_qdq,
    to_float16,
)
from qbench.workspace import cache_dir

WORKSPACE_BYTES = 1 << 30
LIBRARIES = ("torch", "onnx", "onnxruntime", "tensorrt")
QAT_LIBRARIES = (*LIBRARIES, "onnxscript", "torchao")
# INT8 is accepted when the engine's top-1 agrees with the FP32 model on at least this share of
# the real verification images, at every batch size; quantization error rules out a tolerance
INT8_MIN_AGREEMENT = 0.9
VERIFY_IMAGES = 128  # real images (val split, test-time transforms) each profile is checked on
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


# ---------------------------------------------------------------- pure parts (tested on the CPU)


def optimization_profiles(batch_sizes: Iterable[int], input_size: int) -> list[dict[str, Any]]:
    """One profile per distinct batch size, smallest first, with min = opt = max = that size:
    TensorRT tunes kernels for opt only, so a range would serve every size but the one it was
    tuned for with kernels picked for another."""
    sizes = sorted({int(b) for b in batch_sizes})
    if not sizes or sizes[0] < 1:
        raise QBenchError("--batch-sizes needs positive whole numbers, e.g. 1,8,16,32,64.")
    chw = [3, int(input_size), int(input_size)]
    return [
        {"index": i, "batch_size": b, "min": [b, *chw], "opt": [b, *chw], "max": [b, *chw]}
        for i, b in enumerate(sizes)
    ]


def timing_cache_path(root: Path, trt_version: str, gpu_name: str) -> Path:
    """The timing cache of one TensorRT version on one GPU model: timings of another GPU or
    version would be refused by TensorRT, so each pair gets its own file."""

    def slug(text: str) -> str:
        return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "unknown"

    return Path(root) / "tensorrt" / f"timing-{slug(trt_version)}-{slug(gpu_name)}.cache"


def compare_logits(got: np.ndarray, expected: np.ndarray) -> dict[str, Any]:
    """Max absolute logit difference and top-1 agreement of ``got`` with ``expected``."""
    got, expected = np.asarray(got, np.float32), np.asarray(expected, np.float32)
    if got.shape != expected.shape or not np.isfinite(got).all():
        return {"images": len(expected), "max_abs_diff": float("inf"), "top1_agree": 0.0}
    return {
        "images": len(expected),
        "max_abs_diff": float(np.abs(got - expected).max()),
        "top1_agree": float((got.argmax(1) == expected.argmax(1)).mean()),
    }


@dataclass
class Acceptance:
    """What an engine must match before it is accepted, and what to change when it does not."""

    mode: str
    precision: str  # "fp16": allclose to the reference; "int8": top-1 agreement with it
    fix: str  # the end of the refusal sentence: what the user changes
    # the PyTorch model the engine must match (None: the FP32 baseline) and its name in the record;
    # a QAT engine is held to the fine-tuned model it encodes, which the FP32 one is not
    reference: Callable[[torch.Tensor], torch.Tensor] | None = None
    reference_name: str = "the FP32 model"


def _check_close(accept: Acceptance, batch: int, kind: str, got: np.ndarray, expected: np.ndarray) -> float:
    """onnx-fp16's tolerance, its atol scaled by the logits' magnitude; the scaled atol."""
    atol, rtol = TOLERANCES["fp16"]
    scaled = atol * max(1.0, float(np.abs(expected).max()))
    if not np.allclose(got, expected, atol=scaled, rtol=rtol):
        diff = float(np.abs(np.asarray(got, np.float32) - expected).max())
        raise QBenchError(
            f"{accept.mode}: the engine disagrees with {accept.reference_name} at batch size {batch} on "
            f"{kind} inputs (max |diff| {diff:.3g} > atol {scaled:.3g}), so it is not accepted; {accept.fix}."
        )
    return scaled


def judge_verification(accept: Acceptance, checks: list[dict[str, Any]]) -> dict[str, Any]:
    """The verification record of an engine from ``checks`` (per profile: its batch size and
    (got, expected) logits on random and on real inputs), or one sentence refusing it.

    fp16 must match within onnx-fp16's tolerance, scaled by the logits' magnitude, on every
    input; int8 must agree on top-1 on at least INT8_MIN_AGREEMENT of the real images at every
    batch size (random inputs are recorded, not judged: they lie outside the calibrated ranges)."""
    atol, rtol = TOLERANCES["fp16"]
    fp16 = accept.precision == "fp16"
    profiles = []
    for check in checks:
        batch = check["batch_size"]
        entry: dict[str, Any] = {"batch_size": batch}
        for kind in ("random", "real"):
            got, expected = check[kind]
            entry[kind] = compare_logits(got, expected)
            if not np.isfinite(entry[kind]["max_abs_diff"]):
                raise QBenchError(
                    f"{accept.mode}: the engine returned a wrong shape or non-finite values at batch size "
                    f"{batch} on {kind} inputs, so it is not accepted; {accept.fix}."
                )
            if fp16:
                entry[kind]["atol"] = _check_close(accept, batch, kind, got, expected)
        if not fp16 and entry["real"]["top1_agree"] < INT8_MIN_AGREEMENT:
            raise QBenchError(
                f"{accept.mode}: the engine's top-1 agrees with {accept.reference_name} on "
                f"{entry['real']['top1_agree']:.0%} of {entry['real']['images']} real images at batch size "
                f"{batch} (at least {INT8_MIN_AGREEMENT:.0%} needed), so it is not accepted; {accept.fix}."
            )
        profiles.append(entry)
    rule = (
        f"allclose, atol {atol:g} x max(1, max |logit|), rtol {rtol:g}, on every input"
        if fp16
        else f"top-1 agreement >= {INT8_MIN_AGREEMENT:g} on the real images at every batch size"
    )
    return {
        "reference": f"{accept.reference_name} in PyTorch (CPU)",
        "rule": rule,
        "profiles": profiles,
        "max_abs_diff": max(p[k]["max_abs_diff"] for p in profiles for k in ("random", "real")),
        "top1_agree": min(p["real"]["top1_agree"] for p in profiles),
    }


def padded_order(count: int, batch_size: int) -> torch.Tensor:
    """Indices covering ``count`` images in whole batches of ``batch_size``, the last one filled
    up from the start (an engine built for that batch size takes no other)."""
    return torch.arange(math.ceil(count / batch_size) * batch_size) % count


# ---------------------------------------------------------------- TensorRT (CUDA only)


def _parser_errors(parser) -> str:
    errors = []
    for i in range(parser.num_errors):
        error = parser.get_error(i)
        where = (
            f"node {error.node_name() or error.node()} ({error.node_operator()}): "
            if error.node() >= 0
            else ""
        )
        errors.append(f"{where}{error.desc()}")
    return "; ".join(errors) or "no reason given"


def _network_from_onnx(trt, builder, logger, onnx_path: Path):
    """A strongly typed network parsed from ``onnx_path`` (and its parser, which must outlive it)."""
    flags = 0
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strongly_typed is not None:  # TensorRT 11 is always strongly typed and has no flag
        flags |= 1 << int(strongly_typed)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise QBenchError(
            f"TensorRT {trt.__version__}'s ONNX parser rejected {onnx_path.name} ({_parser_errors(parser)}); "
            "use a TensorRT release that supports these operators or bench the ONNX variants instead."
        )
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    if [t.name for t in inputs] != [INPUT] or inputs[0].shape[0] != -1:
        raise QBenchError(
            f"{onnx_path.name} needs one input {INPUT!r} with a dynamic batch axis, not "
            f"{[(t.name, tuple(t.shape)) for t in inputs]}; export it with qbench quantize."
        )
    return network, parser


def _add_profiles(builder, config, profiles: list[dict[str, Any]], onnx_path: Path) -> None:
    for wanted in profiles:
        batch = wanted["batch_size"]
        profile = builder.create_optimization_profile()
        try:
            profile.set_shape(INPUT, *(tuple(wanted[k]) for k in ("min", "opt", "max")))
        except RuntimeError as exc:  # the bindings raise when a shape contradicts the network's
            raise QBenchError(
                f"TensorRT refused batch size {batch} for {onnx_path.name} ({exc}); pass other --batch-sizes."
            ) from None
        if not profile:
            raise QBenchError(
                f"TensorRT found the profile for batch size {batch} invalid; pass other --batch-sizes."
            )
        index = config.add_optimization_profile(profile)
        if index != wanted["index"]:
            raise QBenchError(
                f"TensorRT added the profile for batch size {batch} as {index}, not {wanted['index']}; "
                "pass other --batch-sizes."
            )


def _use_timing_cache(config, path: Path) -> dict[str, Any]:
    """Load the timing cache at ``path`` into ``config`` (an empty one when there is none or
    TensorRT refuses it); what happened, for the record."""
    facts: dict[str, Any] = {"path": str(path), "hit": False}
    try:
        data = path.read_bytes() if path.is_file() else b""
    except OSError as exc:
        data, facts["note"] = b"", f"unreadable ({exc.strerror}); timings measured afresh"
    if data:
        cache = config.create_timing_cache(data)
        if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
            facts["hit"] = True
            return facts
        facts["note"] = (
            "refused by TensorRT (another version or GPU); timings measured afresh and the file replaced"
        )
    cache = config.create_timing_cache(b"")
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        raise QBenchError(
            "TensorRT could not create a timing cache; check the TensorRT installation (see its log above)."
        )
    return facts


def _save_timing_cache(config, path: Path) -> bool:
    """Write the builder's timings (the loaded ones and those measured now) over ``path``
    atomically; a cache folder that cannot be written costs only build time, so it is not fatal."""
    from qbench.records.io import atomic_path

    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    except (OSError, QBenchError):
        return False
    return True


def build_engine(
    onnx_path: Path, plan_path: Path, profiles: list[dict[str, Any]], cache_path: Path
) -> dict[str, Any]:
    """Parse ``onnx_path`` into a strongly typed network, build it with ``profiles`` and the timing
    cache at ``cache_path`` on the current CUDA device, and save the engine to ``plan_path``."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    if builder is None:
        raise QBenchError(
            "TensorRT could not create a builder (no usable CUDA device?); check the GPU driver."
        )
    network, _parser = _network_from_onnx(trt, builder, logger, onnx_path)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    _add_profiles(builder, config, profiles, onnx_path)
    cache = _use_timing_cache(config, cache_path)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if serialized is None or not serialized.nbytes:
        raise QBenchError(
            f"TensorRT could not build an engine from {onnx_path.name} (see its log above); "
            "pass smaller --batch-sizes if it ran out of memory."
        )
    tensorrt_plan.FORMAT.save(plan_path, serialized)
    cache["saved"] = _save_timing_cache(config, cache_path)
    return {
        "tensorrt": trt.__version__,
        "strongly_typed": True,
        "workspace_bytes": WORKSPACE_BYTES,
        "build_seconds": round(seconds, 3),
        "timing_cache": cache,
    }


def _real_images(ctx: ExportContext, count: int) -> torch.Tensor:
    """The first ``count`` images of the val split (test-time transforms)."""
    from torch.utils.data import Subset

    from qbench.data.registry import loader

    val = ctx.data.val
    return torch.cat([x for x, _ in loader(Subset(val, range(min(count, len(val)))), 64)])


def verify_engine(
    ctx: ExportContext, plan_path: Path, accept: Acceptance, profiles: list[dict[str, Any]]
) -> dict[str, Any]:
    """Deserialize the engine as the runner will, check it holds exactly ``profiles``, run each
    profile on random inputs and on real images and judge it against the reference model."""
    plan = tensorrt_plan.deserialize(plan_path, accept.mode)
    input_name, _ = plan.io_names()
    built = plan.profile_batches(input_name)
    wanted = [(p["min"][0], p["opt"][0], p["max"][0]) for p in profiles]
    if built != wanted:
        raise QBenchError(
            f"{accept.mode}: the engine holds batch profiles {built}, not the {wanted} it was built with; "
            f"rerun 'qbench quantize --mode {accept.mode}'."
        )
    reference = accept.reference or ctx.model
    real = _real_images(ctx, VERIFY_IMAGES)
    with torch.inference_mode():
        expected_real = reference(real).float()
    checks = []
    for profile in profiles:
        batch = profile["batch_size"]
        random_input = ctx.example_input(batch)
        order = padded_order(len(real), batch)
        outputs = tensorrt_plan.run_once(
            plan, [random_input, *real[order].split(batch)], profile["index"], accept.mode
        )
        with torch.inference_mode():
            expected_random = reference(random_input).float()
        checks.append(
            {
                "batch_size": batch,
                "random": (outputs[0].numpy(), expected_random.numpy()),
                "real": (torch.cat(outputs[1:])[: len(real)].numpy(), expected_real.numpy()),
            }
        )
    verification = judge_verification(accept, checks)
    verification.update(
        images=len(real),
        image_source="val split (test-time transforms)",
        random="ctx.example_input(batch size)",
    )
    return verification


@contextlib.contextmanager
def _staged(out_dir: Path, *names: str) -> Iterator[Path]:
    """A folder beside the variant's to write ``names`` into; they replace the variant's files
    only when the block succeeds, so a refused engine leaves the previous variant intact."""
    with tempfile.TemporaryDirectory(prefix=".qbench-trt-", dir=out_dir) as tmp:
        yield Path(tmp)
        for name in names:
            os.replace(Path(tmp) / name, out_dir / name)


def engine_facts(ctx: ExportContext, onnx_path: Path, plan_path: Path, accept: Acceptance) -> dict[str, Any]:
    """Build ``onnx_path`` into ``plan_path`` with one profile per batch size and the timing cache
    of this TensorRT and GPU, verify it, and return the details every TensorRT variant records."""
    import tensorrt as trt

    profiles = optimization_profiles(ctx.options.batch_sizes, ctx.input_size)
    device = ctx.options.device if ctx.options.device.startswith("cuda") else "cuda"
    with torch.cuda.device(torch.device(device)):
        gpu = torch.cuda.get_device_name()
        cache_path = timing_cache_path(cache_dir(), trt.__version__, gpu)
        facts = build_engine(onnx_path, plan_path, profiles, cache_path)
        verification = verify_engine(ctx, plan_path, accept, profiles)
    sizes = [p["batch_size"] for p in profiles]
    return {
        **facts,
        "gpu": gpu,
        "batch_sizes": sizes,
        "profiles": profiles,
        "max_batch": max(sizes),  # readers from before the per-batch-size profiles
        "verification": verification,
    }


def _converted(artifact: str, facts: dict[str, Any], **fields: Any) -> Converted:
    return Converted(
        artifact=artifact,
        format=tensorrt_plan.FORMAT.name,
        dtype="float32",
        engine=f"TensorRT {facts['tensorrt']} (strongly typed)",
        **fields,
        details=facts,
    )


@register_exporter(
    "tensorrt-fp16",
    requires=("cuda", "tensorrt"),
    runner="tensorrt",
    devices=("cuda",),
    libraries=LIBRARIES,
    description="TensorRT engine from the FP16 ONNX (FP32 I/O)",
)
def export_tensorrt_fp16(ctx: ExportContext, out_dir: Path) -> Converted:
    import onnx

    artifact = "model-fp16.plan"
    with fp32_onnx(ctx) as source, _staged(out_dir, artifact) as stage:
        fp16_path = stage / "model-fp16.onnx"
        onnx.save_model(to_float16(onnx.load(str(source)))[0], str(fp16_path))
        accept = Acceptance(
            "tensorrt-fp16", "fp16", fix="bench onnx-fp16 instead or report the model and TensorRT version"
        )
        facts = engine_facts(ctx, fp16_path, stage / artifact, accept)
    return _converted(artifact, facts, weights="fp16", activations="fp16")


QDQ_FORM = {
    "activations": "int8, symmetric (zero point 0), per tensor",
    "weights": "int8, symmetric, per output channel",
    "biases": "float (no int32 DequantizeLinear)",
}


def _qdq_converted(
    artifact: str, qdq: str, facts: dict[str, Any], qdq_check: dict[str, Any], quantizer: str, **fields: Any
) -> Converted:
    """An INT8 engine's record: the engine's facts, the QDQ file kept beside it and its check."""
    details = {**facts, "qdq_onnx": qdq, "qdq_check": qdq_check, "qdq": {**QDQ_FORM, "quantizer": quantizer}}
    return _converted(
        artifact, details, weights="int8", granularity="per-channel weights, per-tensor activations", **fields
    )


@register_exporter(
    "tensorrt-int8",
    requires=("cuda", "tensorrt"),
    runner="tensorrt",
    devices=("cuda",),
    ops_unit="GOP/s",
    libraries=LIBRARIES,
    description="TensorRT engine from an explicit INT8 QDQ ONNX (no implicit calibrator)",
)
def export_tensorrt_int8(ctx: ExportContext, out_dir: Path) -> Converted:
    artifact, qdq = "model-int8.plan", "model-int8-qdq.onnx"
    with _staged(out_dir, qdq, artifact) as stage:
        with fp32_onnx(ctx) as source:
            calibration = quantize_qdq(
                ctx, source, stage / qdq, symmetric_activations=True, quantize_bias=False, reduce_range=False
            )
        qdq_check = check_tensorrt_qdq(stage / qdq)
        accept = Acceptance(
            "tensorrt-int8",
            "int8",
            fix="calibrate on more images (--calib-batches) or with another --calib-method",
        )
        facts = engine_facts(ctx, stage / qdq, stage / artifact, accept)
    return _qdq_converted(
        artifact,
        qdq,
        facts,
        qdq_check,
        "onnxruntime.quantization.quantize_static after quant_pre_process",
        activations="int8 (symmetric, explicit QDQ)",
        calibration=calibration,
    )


@register_exporter(
    "tensorrt-qat",
    requires=("cuda", "tensorrt", "torchao"),
    runner="tensorrt",
    devices=("cuda",),
    ops_unit="GOP/s",
    libraries=QAT_LIBRARIES,
    description="TensorRT engine from the QDQ ONNX of quantization-aware training (symmetric int8)",
)
def export_tensorrt_qat(ctx: ExportContext, out_dir: Path) -> Converted:
    artifact, qdq = "model-qat.plan", "model-qat-qdq.onnx"
    with _staged(out_dir, qdq, artifact) as stage:
        qat, converted = qat_qdq_onnx(ctx, stage / qdq)
        qdq_check = check_tensorrt_qdq(stage / qdq)
        accept = Acceptance(
            "tensorrt-qat",
            "int8",
            fix="quantize with --mode tensorrt-int8 instead or report the model and TensorRT version",
            reference=converted,
            reference_name="the QAT model (converted PT2E graph)",
        )
        facts = engine_facts(ctx, stage / qdq, stage / artifact, accept)
    return _qdq_converted(
        artifact,
        qdq,
        facts,
        qdq_check,
        "torchao PT2E QAT (X86InductorQuantizer patterns, symmetric int8 config), torch.onnx.export (dynamo=True)",
        activations="int8 (symmetric, learned by QAT)",
        qat=qat,
    )
