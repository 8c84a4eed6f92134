"""Static INT8 (per-channel weights, calibrated activations) with two PyTorch engines.

- ``x86``: torch.ao.quantization eager mode (QuantStub/DeQuantStub, conv+relu and
  linear+relu fused, the x86 quantized engine), artifact format ``ao-eager-int8``.
  Deprecated upstream, so it is feature-detected (capability ``ao-eager``). No compile step.
- ``pt2e``: torchao's PT2E flow (torch.export -> X86InductorQuantizer -> convert_pt2e),
  artifact format ``pt2e``: an ExportedProgram run through ``torch.compile`` with Inductor
  freezing, which is where the int8 kernels get fused. The future-proof path; its first call
  per batch shape compiles, in every measuring process.

``--engine auto`` (the default) converts the model with every engine available here and
measures them on this machine, as the bench will run them (same threads, the runner's call,
PT2E compiled), at CHOICE_BATCH_SIZES: batch 1, where the int8 weights are streamed once per
image, and the largest batch of the default sweep, where the arithmetic dominates. The score
is the geometric mean over those batch sizes of the least disturbed round's median latency;
the lowest score wins, and x86 keeps the choice within CHOICE_TIE of the best (it needs no
compile). The numbers go into ``details['engine_choice']``. ONNX Runtime's INT8 route is not a
candidate: it is the onnx-int8 variant (its own runner), benched beside int8-ptq.

QAT (qbench.exporters.qat) reuses the preparation, conversion, engine choice and saving below.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qbench import capabilities
from qbench.artifacts import ao_eager, pt2e
from qbench.artifacts._torch import quiet
from qbench.artifacts.ao_eager import OBSERVERS, eager_convert, eager_prepare, fuse_groups
from qbench.errors import QBenchError
from qbench.exporters.base import Converted, ExportContext, register_exporter
from qbench.records.config import CALIB_METHODS, DEFAULT_BATCH_SIZES, ENGINES

LIBRARIES = ("torch", "torchao")
# the ends of the default bench sweep: latency-bound (weights streamed per image) and throughput-bound
CHOICE_BATCH_SIZES = (1, max(DEFAULT_BATCH_SIZES))
# candidates alternate in short rounds, so a burst of load from elsewhere hits both, and a few
# undisturbed rounds are enough for a fair figure (a 2-core machine shared with other work)
CHOICE_ROUNDS = 9
CHOICE_ROUND_S = 0.05  # timed calls per round and batch size: about this long, 1 to CHOICE_MAX_ITERS
CHOICE_MAX_ITERS = 5
CHOICE_TIE = 0.05  # x86 is kept unless another engine's score is lower by more than this share
REQUIREMENT = {"x86": "ao-eager", "pt2e": "torchao"}
ORT_NOTE = "ONNX Runtime INT8 is the onnx-int8 variant (its own runner), benched beside int8-ptq"


def resolve_engine(requested: str) -> tuple[str, str]:
    """The engine for an explicit ``--engine x86|pt2e``, and why; auto is measured (auto_engine)."""
    if requested not in (*ENGINES, "auto"):
        raise QBenchError(f"unknown --engine {requested!r}; pass one of: x86, pt2e, auto.")
    if requested == "auto":
        raise ValueError("--engine auto is decided by measurement: call auto_engine")
    reason = capabilities.missing(REQUIREMENT[requested])
    if reason:
        raise QBenchError(f"--engine {requested} is unavailable here ({reason}); pass --engine auto.")
    return requested, "requested with --engine"


def usable_engines() -> list[str]:
    engines = [e for e in ENGINES if not capabilities.missing(REQUIREMENT[e])]
    if not engines:
        raise QBenchError("no INT8 engine is available; pip install torchao or use a torch with torch.ao.")
    return engines


def observer_for(method: str) -> tuple[str, str | None]:
    """The activation observer for a calibration method, and a note when it is approximated."""
    if method not in OBSERVERS:
        raise QBenchError(f"unknown --calib-method {method!r}; pass one of: {', '.join(CALIB_METHODS)}.")
    observer = OBSERVERS[method]
    if method in ("percentile", "entropy"):
        return observer, f"PyTorch has no {method} observer; {observer} (L2-optimal clipping range) stands in"
    return observer, None


# ---------------------------------------------------------------- eager (torch.ao) engine checks


def eager_quantized_ops(model: nn.Module) -> dict[str, int]:
    counts: dict[str, int] = {}
    for module in model.modules():
        kind = type(module)
        if ".quantized" in kind.__module__ and kind.__name__ not in ("DeQuantize",):
            counts[kind.__name__] = counts.get(kind.__name__, 0) + 1
    return counts


def check_quantized(ops: dict[str, int], what: str) -> None:
    heavy = sum(n for k, n in ops.items() if "Conv" in k or "Linear" in k or "conv" in k or "linear" in k)
    if not heavy:
        raise RuntimeError(
            f"{what}: the converted model contains no quantized conv/linear operators ({ops}); "
            "the conversion silently left the model in floating point"
        )


def _check_runs(model: Callable, example: torch.Tensor, engine: str) -> None:
    try:
        with torch.inference_mode():
            model(example)
    except (RuntimeError, NotImplementedError) as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise QBenchError(
            f"the {engine}-quantized model does not run ({first}); eager mode cannot quantize this "
            "architecture's functional ops: pass --engine pt2e."
        ) from None


# ---------------------------------------------------------------- PT2E (torchao) engine


def pt2e_config(method: str, qat: bool):
    from torchao.quantization.pt2e import HistogramObserver, MinMaxObserver
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    reduce_range = not capabilities.cpu_has_vnni()
    config = xiq.get_default_x86_inductor_quantization_config(is_qat=qat, reduce_range=reduce_range)
    if qat:
        return config
    observer = {"MinMaxObserver": MinMaxObserver, "HistogramObserver": HistogramObserver}[
        observer_for(method)[0]
    ]
    act = dataclasses.replace(
        config.input_activation, observer_or_fake_quant_ctr=observer.with_args(eps=2**-12)
    )
    return dataclasses.replace(config, input_activation=act, output_activation=act)


# elementwise activation modules without state: each call of one is a separate op
STATELESS_ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.Hardtanh,
    nn.LeakyReLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.SiLU,
    nn.GELU,
    nn.Sigmoid,
    nn.Tanh,
    nn.ELU,
)


def split_shared_activations(graph: torch.fx.GraphModule) -> int:
    """Give every call of a reused activation module its own source partition; returns how many
    calls were relabelled.

    torchvision's BasicBlock calls one ``self.relu`` twice (after bn1 and after the residual add).
    The quantizer groups nodes by the module they came from, so both calls form one partition
    with two outputs, and X86InductorQuantizer's QAT conv-bn-add-relu annotation refuses it
    ("Input partition has more than one output node"). Each call of a stateless activation is a
    single op, so labelling each node as its own call changes nothing else.
    """
    calls: dict[str, list[tuple[torch.fx.Node, type]]] = {}
    for node in graph.graph.nodes:
        stack = node.meta.get("nn_module_stack") if node.op == "call_function" else None
        if stack:
            fqn, cls = list(stack.values())[-1]
            cls = _module_class(cls)
            if cls in STATELESS_ACTIVATIONS:
                calls.setdefault(fqn, []).append((node, cls))
    shared = [(fqn, node, cls) for fqn, group in calls.items() if len(group) > 1 for node, cls in group]
    for fqn, node, cls in shared:
        node.meta["source_fn_stack"] = [(f"{fqn}:{node.name}", cls)]
    return len(shared)


def _module_class(cls: Any) -> Any:
    """nn_module_stack holds the class or its qualified name, depending on the export path."""
    if isinstance(cls, str):
        return next((c for c in STATELESS_ACTIVATIONS if f"{c.__module__}.{c.__qualname__}" == cls), None)
    return cls


def pt2e_prepare(model: nn.Module, example: torch.Tensor, method: str = "minmax", qat: bool = False):
    import copy

    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e, prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import X86InductorQuantizer

    model = copy.deepcopy(model).train(qat)
    graph = torch.export.export(model, (example,), dynamic_shapes=pt2e.dynamic_batch()).module()
    split_shared_activations(graph)
    quantizer = X86InductorQuantizer()
    quantizer.set_global(pt2e_config(method, qat))
    with quiet():
        return (prepare_qat_pt2e if qat else prepare_pt2e)(graph, quantizer)


def pt2e_convert(prepared) -> torch.fx.GraphModule:
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    move_exported_model_to_eval(prepared)
    with quiet():
        return convert_pt2e(prepared)


def pt2e_quantized_ops(graph: torch.fx.GraphModule) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in graph.graph.nodes:
        target = str(node.target)
        if node.op == "call_function" and "quantize" in target:
            name = target.split(".")[-2]
            counts[name] = counts.get(name, 0) + 1
    return counts


def _check_pt2e(ops: dict[str, int]) -> None:
    if not ops.get("quantize_per_tensor") or not ops.get("dequantize_per_channel"):
        raise RuntimeError(
            f"pt2e: the converted graph has no quantize_per_tensor/dequantize_per_channel nodes ({ops}); "
            "X86InductorQuantizer annotated nothing"
        )


# ---------------------------------------------------------------- --engine auto: measured here


@dataclasses.dataclass
class Candidate:
    """One engine's converted model, as the bench would call it."""

    engine: str
    converted: Any  # what gets saved (x86: the quantized module; pt2e: the converted graph)
    call: Callable[[torch.Tensor], Any]  # x86: the module; pt2e: the reloaded program, compiled
    saved: Path | None = None  # pt2e: the artifact, already written to measure what the runner loads


def machine_key() -> dict[str, Any]:
    """What a measured engine choice depends on besides the model: a choice is reused only here."""
    from qbench.env import cpu_info

    return {
        "cpu": cpu_info().model,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchao": _version("torchao"),
    }


def _version(dist: str) -> str | None:
    import importlib.metadata as md

    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def candidate(engine: str, ctx: ExportContext, batches, method: str, tmp: Path, mode: str) -> Candidate:
    """Convert with ``engine``; PT2E is saved and reloaded and compiled as the torch runner does it."""
    converted = _ptq(engine, ctx, batches, method, mode)
    if engine == "x86":
        return Candidate(engine, converted, converted)
    _check_pt2e(pt2e_quantized_ops(converted))
    saved = pt2e.FORMAT.save(tmp / "candidate.pt2", converted, ctx.example_input(2))
    graph = pt2e.load_graph(saved, mode)
    graph.eval()  # torchao's train/eval switch for exported graphs returns None
    return Candidate(engine, converted, torch.compile(graph), saved)


def first_calls(call: Callable, inputs: dict[int, torch.Tensor]) -> tuple[dict[str, float], dict[int, int]]:
    """The first call per batch size (PT2E compiles in it, as in the bench's cold call), then one warm
    call that sets how many calls fill CHOICE_ROUND_S (1 to CHOICE_MAX_ITERS)."""
    clock = time.perf_counter
    first, iters = {}, {}
    with torch.inference_mode():
        for batch, x in inputs.items():
            start = clock()
            call(x)
            first[str(batch)] = round(clock() - start, 3)
            start = clock()
            call(x)
            warm_s = max(clock() - start, 1e-6)
            iters[batch] = max(1, min(CHOICE_MAX_ITERS, int(CHOICE_ROUND_S / warm_s)))
    return first, iters


def measure(
    calls: dict[str, Callable], inputs: dict[int, torch.Tensor], iters: dict[str, dict[int, int]]
) -> dict[str, dict[str, Any]]:
    """CHOICE_ROUNDS rounds in which the engines take turns, each timing ``iters`` calls per batch
    size. The figure kept per batch size is the lowest round median: on a shared machine, the
    least disturbed estimate; the score is their geometric mean."""
    clock = time.perf_counter
    rounds: dict[str, dict[str, list[float]]] = {name: {str(b): [] for b in inputs} for name in calls}
    with torch.inference_mode():
        for _ in range(CHOICE_ROUNDS):
            for name, call in calls.items():
                for batch, x in inputs.items():
                    samples = []
                    for _ in range(iters[name][batch]):
                        start = clock()
                        call(x)
                        samples.append((clock() - start) * 1e3)
                    rounds[name][str(batch)].append(round(statistics.median(samples), 4))
    facts = {}
    for name, per_batch in rounds.items():
        best = {b: min(meds) for b, meds in per_batch.items()}
        facts[name] = {
            "median_ms": best,
            "iterations": {str(b): n * CHOICE_ROUNDS for b, n in iters[name].items()},
            "round_median_ms": per_batch,
            "score_ms": round(math.exp(statistics.fmean(math.log(v) for v in best.values())), 4),
        }
    return facts


def decide(facts: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """The engine with the lowest score, x86 within CHOICE_TIE of it; and why, with the numbers."""
    best = min(facts, key=lambda name: facts[name]["score_ms"])
    engine = (
        "x86"
        if "x86" in facts and facts["x86"]["score_ms"] <= facts[best]["score_ms"] * (1 + CHOICE_TIE)
        else best
    )
    shown = "; ".join(
        f"{name} " + ", ".join(f"{ms:.3g} ms at batch {b}" for b, ms in fact["median_ms"].items())
        for name, fact in facts.items()
    )
    if engine != best:
        return (
            engine,
            f"auto: measured here, x86 kept (within {CHOICE_TIE:.0%} of {best}, no compile): {shown}",
        )
    return engine, f"auto: measured here, {engine} is the fastest: {shown}"


def auto_engine(
    ctx: ExportContext, batches: list[torch.Tensor], method: str, tmp: Path, mode: str = "int8-ptq"
) -> tuple[Candidate, dict[str, Any]]:
    """Convert with every usable engine, measure them here, keep the winner; and the choice record.
    An engine that fails to convert or compile this model drops out, its reason recorded."""
    candidates: dict[str, Candidate] = {}
    failed: dict[str, str] = {}
    errors: list[Exception] = []
    progress = ctx.progress
    task = progress.add_task(f"{mode} engine choice", total=None, status="") if progress else None

    def step(status: str, engine: str, work: Callable[[], Any]) -> Any:
        if task is not None:
            progress.update(task, status=status)
        try:
            with quiet(), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # Inductor's lowering chatter while compiling
                return work()
        except Exception as exc:  # torch.ao, torch.export and Inductor raise assorted types
            errors.append(exc)
            failed[engine] = str(exc) if isinstance(exc, QBenchError) else _first_line(exc)
            candidates.pop(engine, None)
            return None

    for engine in usable_engines():
        found = step(
            f"converting with {engine}",
            engine,
            lambda e=engine: candidate(e, ctx, batches, method, tmp, mode),
        )
        if found is not None:
            candidates[engine] = found
    inputs = {b: ctx.example_input(b).contiguous() for b in CHOICE_BATCH_SIZES}
    warm: dict[str, tuple[dict[str, float], dict[int, int]]] = {}
    for engine in list(candidates) if len(candidates) > 1 else []:  # one candidate: nothing to compare
        done = step(
            f"first calls of {engine}", engine, lambda e=engine: first_calls(candidates[e].call, inputs)
        )
        if done is not None:
            warm[engine] = done
    if not candidates:
        raise errors[0]
    choice: dict[str, Any] = {
        "requested": "auto",
        "machine": machine_key(),
        "not_candidates": {"onnxruntime": ORT_NOTE, **failed},
    }
    if len(candidates) == 1:
        (engine,) = candidates
        choice.update(
            engine=engine, why=f"auto: {engine} is the only engine that converts and runs this model here"
        )
    else:
        if task is not None:
            progress.update(task, status="measuring")
        facts = measure(
            {e: c.call for e, c in candidates.items()}, inputs, {e: warm[e][1] for e in candidates}
        )
        for engine, fact in facts.items():
            fact["first_call_s"] = warm[engine][0]
        engine, why = decide(facts)
        choice.update(
            engine=engine,
            why=why,
            rule=(
                f"lowest geometric mean over batch sizes {list(CHOICE_BATCH_SIZES)} of the lowest round "
                f"median ({CHOICE_ROUNDS} alternating rounds); x86 kept within {CHOICE_TIE:.0%}"
            ),
            batch_sizes=list(CHOICE_BATCH_SIZES),
            threads=torch.get_num_threads(),
            candidates=facts,
        )
    if task is not None:
        progress.update(task, total=1, completed=1, status=engine)
    return candidates[engine], choice


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:160]}"


def explicit_choice(requested: str) -> dict[str, Any]:
    engine, why = resolve_engine(requested)
    return {"engine": engine, "requested": requested, "why": why}


def reused_choice(ctx: ExportContext) -> dict[str, Any] | None:
    """int8-ptq's ``--engine auto`` choice, when it was measured for this baseline on this machine
    (an engine's speed does not depend on calibration or fine-tuning: qat takes it as it is)."""
    from qbench.records import VariantRecord

    path, baseline = ctx.workspace.variant_json("int8-ptq"), ctx.workspace.model_path
    if not path.is_file() or path.stat().st_mtime < baseline.stat().st_mtime:
        return None
    try:
        record = VariantRecord.from_json(path)
    except QBenchError:  # unreadable or of another schema: measure afresh
        return None
    here = ctx.baseline()
    same_model = (record.baseline.model, record.baseline.input_size) == (here.model, here.input_size)
    choice = record.details.get("engine_choice") if record.ok and same_model else None
    if (
        not isinstance(choice, dict)
        or choice.get("requested") != "auto"
        or choice.get("machine") != machine_key()
    ):
        return None
    why = str(choice.get("why", "")).removeprefix("auto: ")
    return {**choice, "why": f"auto: int8-ptq's measurement reused ({why})", "measured_by": "int8-ptq"}


# ---------------------------------------------------------------- shared by int8-ptq and qat


def calibrate(model: Callable, batches: Iterable[torch.Tensor], ctx: ExportContext, label: str) -> None:
    batches = list(batches)
    task = ctx.progress.add_task(label, total=len(batches), status="") if ctx.progress else None
    with torch.no_grad():
        for batch in batches:
            model(batch)
            if task is not None:
                ctx.progress.advance(task)


def _save(
    engine: str, converted: Any, ctx: ExportContext, out_dir: Path, stem: str, saved: Path | None
) -> Converted:
    """Check that ``converted`` holds real int8 operators and save it in its engine's format
    (``saved``: a PT2E artifact written already, moved into place)."""
    example = ctx.example_input(2)
    other = out_dir / f"{stem}.{'pt2' if engine == 'x86' else 'pt'}"
    other.unlink(missing_ok=True)  # the other engine's artifact from an earlier conversion
    if engine == "x86":
        ops = eager_quantized_ops(converted)
        check_quantized(ops, "x86")
        _check_runs(converted, example, "x86")
        artifact = f"{stem}.pt"
        ao_eager.FORMAT.save(out_dir / artifact, converted)
        return Converted(
            artifact=artifact,
            format=ao_eager.FORMAT.name,
            dtype="float32",
            engine="torch.ao.quantization eager, x86 quantized engine",
            details={
                "quantized_engine": ao_eager.QUANTIZED_ENGINE,
                "quantized_ops": ops,
                "fused": fuse_groups(ctx.model),
            },
        )
    ops = pt2e_quantized_ops(converted)
    _check_pt2e(ops)
    artifact = f"{stem}.pt2"
    if saved is None:
        pt2e.FORMAT.save(out_dir / artifact, converted, example)
    else:
        os.replace(saved, out_dir / artifact)
    return Converted(
        artifact=artifact,
        format=pt2e.FORMAT.name,
        dtype="float32",
        engine="torchao PT2E + X86InductorQuantizer, torch.compile (Inductor, freezing)",
        details={
            "quantized_engine": "inductor (oneDNN int8 kernels)",
            "quantized_ops": ops,
            "compile": True,
            "inductor_config": dict(pt2e.INDUCTOR_CONFIG),
        },
    )


def save_int8(
    choice: dict[str, Any],
    converted: Any,
    ctx: ExportContext,
    out_dir: Path,
    stem: str,
    saved: Path | None = None,
) -> Converted:
    """Save an int8 model of the chosen engine with the fields int8-ptq and qat share."""
    result = _save(choice["engine"], converted, ctx, out_dir, stem, saved)
    # dtype float32: the runner's input and output; int8 lives inside
    result.weights, result.activations = "int8", "uint8"
    result.granularity = "per-channel weights (symmetric), per-tensor activations (affine)"
    result.details.update(engine_choice=choice, reduce_range=not capabilities.cpu_has_vnni())
    return result


@register_exporter(
    "int8-ptq",
    ops_unit="GOP/s",
    devices=("cpu",),  # the x86 quantized engine and the X86InductorQuantizer's kernels
    libraries=LIBRARIES,
    description="static INT8 PTQ: per-channel weights, calibrated activations (x86 eager or PT2E)",
)
def export_int8_ptq(ctx: ExportContext, out_dir: Path) -> Converted:
    method = ctx.options.calib_method
    observer, note = observer_for(method)
    batches, calib = ctx.calibration_batches()
    with tempfile.TemporaryDirectory(prefix="qbench-engine-", dir=out_dir) as tmp:
        if ctx.options.engine == "auto":
            chosen, choice = auto_engine(ctx, batches, method, Path(tmp))
            converted, saved = chosen.converted, chosen.saved
        else:
            choice = explicit_choice(ctx.options.engine)
            converted, saved = _ptq(choice["engine"], ctx, batches, method), None
        result = save_int8(choice, converted, ctx, out_dir, "model-int8", saved)
    result.calibration = dataclasses.replace(calib, observer=observer, note=note)
    return result


def _ptq(engine: str, ctx: ExportContext, batches, method: str, mode: str = "int8-ptq"):
    torch.manual_seed(ctx.options.seed)
    if engine == "x86":
        prepared = eager_prepare(ctx.model, method)
        calibrate(prepared, batches, ctx, f"{mode} calibration (x86)")
        converted = eager_convert(prepared)
        # eager mode cannot quantize some functional ops: fail here so auto can fall back to PT2E
        _check_runs(converted, ctx.example_input(2), "x86")
        return converted
    prepared = pt2e_prepare(ctx.model, ctx.example_input(2), method)
    calibrate(prepared, batches, ctx, f"{mode} calibration (pt2e)")
    return pt2e_convert(prepared)
