"""How a variant was made (from its VariantRecord): engine, calibration, QAT history, tools."""

from __future__ import annotations

from dataclasses import dataclass, field

from qbench.records import BenchResult, QatEpoch, VariantRecord
from qbench.reports import fmt


@dataclass
class ConversionFacts:
    engine: str
    runner: str
    calibration: str
    qat: str
    qat_history: list[QatEpoch] = field(default_factory=list)  # accuracies in percent
    qat_lines: list[str] = field(default_factory=list)
    seconds: str = ""
    tool_versions: str = ""
    description: str = ""


def qat_line(h: QatEpoch) -> str:
    return (
        f"epoch {h.epoch}, train loss {h.train_loss:.6f}, train acc {h.train_acc:.2f}%, "
        f"val acc {h.val_acc:.2f}%"
    )


def conversion_facts(v: VariantRecord | None, r: BenchResult, unavailable: str) -> ConversionFacts:
    if v is None:
        missing = fmt.na(unavailable or "no variant record")
        return ConversionFacts(
            missing, r.runner or missing, missing, missing, seconds=missing, tool_versions=missing
        )
    calib = v.calibration
    if calib is not None:
        calibration = f"{calib.method}, {calib.batches} batches ({calib.images:,} images), hash {calib.hash}"
    else:
        calibration = fmt.na("no calibration: this conversion needs none")
    if v.qat is not None:
        qat = f"{v.qat.epochs} epoch(s) of fake-quant fine-tuning (lr {fmt.short_float(v.qat.lr)})"
        history = list(v.qat.history)
    else:
        qat = fmt.na("post-training conversion, no fine-tuning")
        history = []
    versions = ", ".join(f"{k} {val}" for k, val in sorted(v.tool_versions.items()))
    return ConversionFacts(
        engine=v.engine or fmt.na(unavailable or "not recorded in variant.json"),
        runner=v.runner,
        calibration=calibration,
        qat=qat,
        qat_history=history,
        qat_lines=[qat_line(h) for h in history],
        seconds=fmt.plain(v.conversion_seconds, 2, unavailable or "not recorded", " s"),
        tool_versions=versions or fmt.na("not recorded"),
        description=v.description,
    )
