"""Assemble the report context from sources: typed rows plus the facts of each workspace.

Every number comes from the records (TrainRecord, VariantRecord, BenchResult) or is derived
from them (ratios, deltas). Templates read the context's attributes; ``report.json`` is
:func:`context_for_json` of the same objects.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qbench import __version__
from qbench.errors import QBenchError
from qbench.records import Record
from qbench.reports import fmt
from qbench.reports.baseline_detail import ModelSummaryTable, SplitTable, model_summary, split_table
from qbench.reports.evaluation import EvaluationSection, evaluation_sections
from qbench.reports.profiles import ProfileSection
from qbench.reports.profiles import sections as profile_sections
from qbench.reports.roofline import LimitsTable, RooflineSection
from qbench.reports.roofline import sections as roofline_sections
from qbench.reports.rows import LatencyRow, VariantRow, variant_row
from qbench.reports.sources import BASELINE_MODE, Source
from qbench.reports.text_fields import comparison, text_fields
from qbench.reports.train_facts import TrainFacts, train_facts
from qbench.workspace import Workspace


@dataclass
class SourceInfo:
    label: str
    machine: str
    workspace: str
    experiment: str


@dataclass
class BaselineInfo:
    """The FP32 baseline of one source, for the report header."""

    source: str
    experiment: str
    row: VariantRow | None
    train: TrainFacts

    @property
    def present(self) -> bool:
        return self.row is not None


@dataclass
class LatencyLine:
    """A latency row with the variant it belongs to (the flat tables of md/html)."""

    variant: str
    mode: str
    source: str
    row: LatencyRow


@dataclass
class ReportContext:
    title: str
    project: str
    qbench_version: str
    generated: str
    multi: bool
    sources: list[SourceInfo]
    baselines: list[BaselineInfo]
    variants: list[VariantRow]
    batch_sizes: list[int]
    latency_rows: list[LatencyLine]
    model_summary: ModelSummaryTable | None
    split_metrics: SplitTable | None
    # `qbench evaluate` records by variant key ("<source label>/<mode>"), in report order
    evaluations_by_key: dict[str, EvaluationSection] = field(default_factory=dict)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    # roofline and energy of each ok result by variant key, and the machine limits they compared with
    roofline_by_key: dict[str, RooflineSection] = field(default_factory=dict)
    machine_limits: list[LimitsTable] = field(default_factory=list)
    # per-layer profiles (bench --profile) of each ok result by variant key
    profile_by_key: dict[str, ProfileSection] = field(default_factory=dict)

    @property
    def evaluations(self) -> list[EvaluationSection]:
        return list(self.evaluations_by_key.values())

    @property
    def rooflines(self) -> list[RooflineSection]:
        return list(self.roofline_by_key.values())

    @property
    def profile_sections(self) -> list[ProfileSection]:
        return list(self.profile_by_key.values())

    @property
    def ok_variants(self) -> list[VariantRow]:
        return [v for v in self.variants if v.ok]

    @property
    def skipped(self) -> list[VariantRow]:
        return [v for v in self.variants if not v.ok]

    @property
    def has_per_class(self) -> bool:
        return any(v.per_class for v in self.variants)

    def template_vars(self) -> dict[str, Any]:
        names = [f.name for f in dataclasses.fields(self)]
        names += ["ok_variants", "skipped", "has_per_class", "evaluations", "rooflines", "profile_sections"]
        return {name: getattr(self, name) for name in names}


def experiment_name(source: Source) -> str:
    return source.train.experiment if source.train is not None else source.root.name


def _source_rows(source: Source, multi: bool) -> tuple[list[VariantRow], TrainFacts]:
    train = train_facts(source.train)
    experiment = experiment_name(source)
    rows = []
    for r in source.results:
        row = variant_row(source, r, multi)
        row.experiment = experiment
        row.train = train
        row.text = text_fields(source, r, row, experiment, train.seed)
        rows.append(row)
    base = next((row for row in rows if row.is_baseline), None)
    for row in rows:
        row.comparison = comparison(row, base)
    return rows, train


def build_context(sources: list[Source], title: str | None = None) -> ReportContext:
    if not sources:
        raise QBenchError("nothing to report: pass a workspace with results (run 'qbench bench' first).")
    multi = len(sources) > 1
    variants: list[VariantRow] = []
    baselines = []
    for s in sources:
        rows, train = _source_rows(s, multi)
        variants.extend(rows)
        base = next((row for row in rows if row.mode == BASELINE_MODE), None)
        baselines.append(BaselineInfo(source=s.label, experiment=experiment_name(s), row=base, train=train))
    batch_sizes = sorted({lat.batch_size for v in variants for lat in v.latency})
    for v in variants:
        v.speedup_cells = [
            lat.speedup_text
            if (lat := v.latency_at(b))
            else fmt.na(v.unavailable or f"batch {b} not measured")
            for b in batch_sizes
        ]
    first_train = next((s.train for s in sources if s.train is not None), None)
    rooflines, limits_tables = roofline_sections(sources, multi)
    model_name = next((v.model.name for v in variants if v.is_baseline and v.model.name), None)
    model_name = model_name or variants[0].model.name or "model"
    return ReportContext(
        title=title or f"{model_name.upper()} quantization and deployment benchmark",
        project=f"qbench {__version__}: quantization and deployment benchmark",
        qbench_version=__version__,
        generated=_dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        multi=multi,
        sources=[SourceInfo(s.label, s.machine, str(s.root), experiment_name(s)) for s in sources],
        baselines=baselines,
        variants=variants,
        batch_sizes=batch_sizes,
        latency_rows=[LatencyLine(v.label, v.mode, v.source, lat) for v in variants for lat in v.latency],
        model_summary=model_summary(first_train),
        split_metrics=split_table(first_train),
        evaluations_by_key=_evaluations(sources, multi),
        roofline_by_key=rooflines,
        machine_limits=limits_tables,
        profile_by_key=profile_sections(sources, multi),
    )


def _evaluations(sources: list[Source], multi: bool) -> dict[str, EvaluationSection]:
    found = {}
    for s in sources:
        for section in evaluation_sections(Workspace(s.root)):
            key = f"{s.label}/{section.name}"  # a variant row's key, for the variant's own report
            if multi:
                section.name = f"{section.name} @ {s.label}"
            found[key] = section
    return found


# ---------------------------------------------------------------------------------------------
# report.json: the context as plain data


def _plain(obj: Any) -> Any:
    if isinstance(obj, Record):
        return _plain(obj.to_dict())  # records keep their schema (and derived fields such as top5_error)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        data = {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        for name in _JSON_PROPERTIES.get(type(obj).__name__, ()):
            data[name] = _plain(getattr(obj, name))
        return data
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


# derived values a JSON reader needs without recomputing them
_JSON_PROPERTIES = {
    "VariantRow": ("ok", "noisy"),
    "LatencyRow": ("batch_size", "noisy"),
    "BaselineInfo": ("present",),
}


def context_for_json(ctx: ReportContext) -> dict[str, Any]:
    """The context as JSON data, without what only templates need (figure data URIs, repeats)."""
    data = _plain(dataclasses.replace(ctx, latency_rows=[]))
    del data["latency_rows"]  # the same rows are under each variant
    data["figures"] = {
        k: {kk: vv for kk, vv in f.items() if kk != "data_uri"} for k, f in ctx.figures.items()
    }
    for v in data["variants"]:
        del v["train"]  # once per source, under baselines
    for b in data["baselines"]:
        b["mode"] = BASELINE_MODE
        b["row"] = b["row"]["key"] if b["row"] else None
    return data
