"""Which steps of ``qbench run`` must be redone, and why: decided from the records, not file times.

Each record keeps what it was made from, so each check compares that with what this run asks for:

- the baseline (``train.json``): the model, class count, data config and training config
  (an imported baseline is kept when model, classes and data match: ``run`` cannot import);
- a variant (``variant.json``): the sha256 of the baseline it was converted from, the sha256 of
  its artifact as written (re-hashed now), the qbench that converted it and the quantize options
  that matter for it (calibration options only where it was calibrated, QAT options only for QAT);
- a result (``results/<mode>.json``): the variant record it measured (embedded, so a re-converted
  variant makes it stale), the bench options, the repeats that finished and the qbench version.

A failed record is always redone, and so is a skipped one whose reason no longer holds (a
requirement now met). File times are used in one place only: a ``model.pt`` newer than its
``train.json`` means the baseline step was killed between the two writes. Every function returns
``{name: reason}`` so the run can say why each step is redone ("fp32: batch sizes 1,8 -> 1,4").
"""

from __future__ import annotations

from typing import Any

from qbench import __version__
from qbench.baselines.request import BaselineRequest
from qbench.errors import QBenchError
from qbench.records import BenchOptions, BenchResult, QuantizeOptions, Record, TrainRecord, VariantRecord
from qbench.records.io import clean_json, sha256_of
from qbench.workspace import Workspace

LABELS = {
    # BenchOptions
    "batch_sizes": "batch sizes",
    "iters": "iterations",
    "warmup": "warm-up calls",
    "warmup_s": "warm-up seconds",
    "min_seconds": "minimum timed seconds",
    "max_iters": "iteration cap",
    "max_seconds_per_batch": "time budget per batch size (s)",
    "cv_threshold": "CV threshold",
    "isolate": "isolation",
    "accuracy": "accuracy pass",
    # QuantizeOptions
    "calib_batches": "calibration batches",
    "calib_batch_size": "calibration batch size",
    "calib_method": "calibration method",
    "qat_epochs": "QAT epochs",
    "qat_max_batches": "QAT batches per epoch",
    "qat_lr": "QAT learning rate",
    # DataConfig and TrainConfig
    "name": "data set",
    "root": "data folder",
    "image_size": "image size",
    "augment": "augmentation",
    "eval_crops": "test-time crops",
    "batch_size": "training batch size",
    "max_batches": "batches per epoch",
    "lr_backbone": "backbone learning rate",
    "lr_head": "head learning rate",
}
# settings that do not change what a step makes: where or how fast it ran, how often it saved
BENCH_IGNORED = frozenset({"variants"})
QUANTIZE_IGNORED = frozenset({"workers"})
DATA_IGNORED = frozenset({"download"})
TRAIN_IGNORED = frozenset({"workers", "save_every_s", "device", "deterministic"})
# quantize options that only matter for a calibrated (or QAT) variant, and for QAT alone
CALIBRATION_OPTIONS = frozenset({"calib_batches", "calib_batch_size", "calib_method", "engine", "seed"})
QAT_OPTIONS = frozenset({"qat_epochs", "qat_max_batches", "qat_lr"})
# the batch sizes matter only to an engine built with a profile per batch size (TensorRT)
SHAPE_OPTIONS = frozenset({"batch_sizes"})


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def changes(recorded: Record | None, wanted: Record, ignore: frozenset[str] = frozenset()) -> list[str]:
    """'batch sizes 1,8 -> 1,4' for each setting of ``wanted`` that ``recorded`` holds otherwise."""
    new = clean_json(wanted.to_dict())  # as JSON, the way the record was read back
    old = clean_json(recorded.to_dict()) if recorded is not None else {}
    return [
        f"{LABELS.get(name, name.replace('_', ' '))} {_text(old.get(name))} -> {_text(value)}"
        for name, value in new.items()
        if name not in ignore and name != "schema_version" and old.get(name) != value
    ]


def _why(items: list[str]) -> str:
    return "; ".join(items)


# --- baseline --------------------------------------------------------------------------------


def stored_baseline(ws: Workspace) -> TrainRecord | None:
    """The workspace's training record when model.pt is there and the record reads, else None."""
    if not ws.model_path.is_file():
        return None
    try:
        return TrainRecord.from_json(ws.train_json)
    except QBenchError:
        return None


def baseline_changes(record: TrainRecord, request: BaselineRequest) -> list[str]:
    """How the stored baseline differs from the one ``request`` asks for (empty: it is that one)."""
    found = []
    if record.model != request.model:
        found.append(f"model {record.model} -> {request.model}")
    if request.num_classes is not None and record.num_classes != request.num_classes:
        found.append(f"classes {record.num_classes} -> {request.num_classes}")
    found += changes(record.data, request.data, DATA_IGNORED)
    if request.import_path is not None:
        wanted = str(request.import_path)
        if record.source.kind != "import" or record.source.checkpoint != wanted:
            found.append(f"imported from {record.source.checkpoint or 'nothing (trained)'} -> {wanted}")
    elif record.source.kind == "train" and request.train is not None:
        found += changes(record.training, request.train, TRAIN_IGNORED)
    # an imported baseline with this model and data is kept: 'run' cannot import, the user chose it
    return found


def baseline_staleness(ws: Workspace, request: BaselineRequest) -> str | None:
    """Why the baseline must be (re)made for ``request``, or None when the stored one is it."""
    if not ws.model_path.is_file():
        return "no baseline yet"
    if not ws.train_json.is_file():
        return "model.pt has no train.json beside it"
    record = stored_baseline(ws)
    if record is None:
        return "train.json does not read with this qbench"
    if ws.model_path.stat().st_mtime_ns > ws.train_json.stat().st_mtime_ns:
        return "model.pt is newer than train.json (the baseline step was interrupted between its writes)"
    found = baseline_changes(record, request)
    return _why(found) if found else None


# --- variants --------------------------------------------------------------------------------


def _read(kind: type[VariantRecord] | type[BenchResult], path) -> tuple[Any, str | None]:
    if not path.is_file():
        return None, "missing"
    try:
        return kind.from_json(path), None
    except QBenchError:  # corrupt, or written by another schema
        return None, f"{path.name} does not read with this qbench"


def variant_staleness(
    ws: Workspace, mode: str, options: QuantizeOptions, baseline_sha256: str | None
) -> str | None:
    """Why variants/<mode> must be converted again, or None when it is up to date."""
    from qbench import capabilities

    record, unreadable = _read(VariantRecord, ws.variant_json(mode))
    if record is None:
        return "not converted yet" if unreadable == "missing" else unreadable
    if record.status == "failed":
        return f"the last conversion failed ({record.skip_reason or record.note or 'no reason recorded'})"
    if record.status == "skipped":
        if capabilities.first_missing(tuple(record.requires)) is None:
            return f"skipped at conversion ({record.skip_reason}), but its requirements are met now"
        return None  # still cannot be made here; the bench records it as skipped
    found = []
    if record.baseline.checkpoint_sha256 is None or record.artifact_sha256 is None:
        found.append("no checksums recorded (an older qbench converted it)")
    elif record.baseline.checkpoint_sha256 != baseline_sha256:
        found.append("the baseline changed since its conversion")
    else:
        artifact = ws.variant_dir(mode) / (record.artifact or "")
        actual = sha256_of(artifact) if record.artifact else None
        if actual is None:
            found.append(f"its artifact {record.artifact} is missing")
        elif actual != record.artifact_sha256:
            found.append(f"its artifact {record.artifact} changed since its conversion")
    if record.qbench_version and record.qbench_version != __version__:
        found.append(f"qbench {record.qbench_version} -> {__version__}")
    ignore = QUANTIZE_IGNORED
    if record.calibration is None and record.qat is None:
        ignore |= CALIBRATION_OPTIONS
    if record.qat is None:
        ignore |= QAT_OPTIONS
    if "profiles" not in record.details:
        ignore |= SHAPE_OPTIONS
    found += changes(record.options, options, ignore)
    return _why(found) if found else None


def stale_variants(ws: Workspace, modes: list[str], options: QuantizeOptions | None = None) -> dict[str, str]:
    """{mode: why it must be converted again} for each of ``modes`` that is not up to date."""
    options = options or QuantizeOptions()
    baseline_sha256 = sha256_of(ws.model_path)
    found = {m: variant_staleness(ws, m, options, baseline_sha256) for m in modes}
    return {m: why for m, why in found.items() if why}


# --- results ---------------------------------------------------------------------------------


def _variant_change(measured: VariantRecord | None, current: VariantRecord) -> str | None:
    if measured is None:
        return "it recorded no variant"
    if clean_json(measured.to_dict()) == clean_json(current.to_dict()):  # as JSON: NaN equals NaN
        return None
    if measured.artifact_sha256 != current.artifact_sha256:
        return "the variant's artifact changed since it was benched"
    return (
        f"the variant was converted again ({measured.created or 'undated'} -> {current.created or 'undated'})"
    )


def result_staleness(ws: Workspace, mode: str, options: BenchOptions) -> str | None:
    """Why results/<mode>.json must be measured again, or None when it is up to date."""
    failed, _ = _read(BenchResult, ws.failed_result_path(mode))
    if failed is not None:
        return f"the last bench failed ({failed.skip_reason or 'no reason recorded'})"
    record, unreadable = _read(BenchResult, ws.result_path(mode))
    if record is None:
        return "not benched yet" if unreadable == "missing" else unreadable
    if record.status == "failed":
        return f"the last bench failed ({record.skip_reason or 'no reason recorded'})"
    variant, unreadable = _read(VariantRecord, ws.variant_json(mode))
    if variant is None:
        return None  # nothing to bench; select_modes says so if it is asked for
    found = []
    if record.status == "skipped":
        from qbench.harness.sweep import skip_reason

        if skip_reason(variant, options) is None:
            found.append(f"skipped ({record.skip_reason}), but it can run here now")
    change = _variant_change(record.variant, variant)
    if change:
        found.append(change)
    found += changes(record.settings.options, options, BENCH_IGNORED)
    if record.ok and record.settings.repeats_done < options.repeats:
        found.append(f"{record.settings.repeats_done} of {options.repeats} repeats finished")
    version = record.env.qbench_version if record.env else None
    if version and version != __version__:
        found.append(f"qbench {version} -> {__version__}")
    return _why(found) if found else None


def stale_results(ws: Workspace, modes: list[str], options: BenchOptions | None = None) -> dict[str, str]:
    """{mode: why it must be benched again} for the workspace's variants among ``modes``."""
    options = options or BenchOptions()
    found = {m: result_staleness(ws, m, options) for m in ws.variant_modes() if m in modes}
    return {m: why for m, why in found.items() if why}
