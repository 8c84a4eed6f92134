"""Rows of `qbench evaluate` records: reference 003's split and per-class tables for every variant.

An evaluation record lives at ``evaluation/<name>.json`` in the workspace; :func:`split_table`
turns it into the same :class:`~qbench.reports.baseline_detail.SplitTable` the baseline's
tables use, so one template block renders the baseline and every evaluated variant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qbench.records import EvaluationRecord
from qbench.reports.baseline_detail import SplitTable, tabulate_splits
from qbench.workspace import Workspace

FOLDER = "evaluation"


def evaluation_json(ws: Workspace, name: str) -> Path:
    return ws.root / FOLDER / f"{name}.json"


def load_evaluations(ws: Workspace) -> list[EvaluationRecord]:
    """Every evaluation record of the workspace, fp32 first, then by name."""
    folder = ws.root / FOLDER
    paths = sorted(folder.glob("*.json"), key=lambda p: (p.stem != "fp32", p.stem)) if folder.is_dir() else []
    return [EvaluationRecord.from_json(p) for p in paths]


def split_table(record: EvaluationRecord) -> SplitTable:
    """The record's splits (in train, val, test order) as reference 003's tables."""
    return tabulate_splits(record.splits)


@dataclass
class EvaluationSection:
    """One evaluated variant: what it is, how it was seen, and its tables."""

    name: str
    runner: str
    device: str
    eval_crops: str
    table: SplitTable
    confusion: dict[str, list[list[int]]]  # per split
    class_names: list[str]


def evaluation_sections(ws: Workspace) -> list[EvaluationSection]:
    """What the text and HTML reports show under 'Evaluation', one section per record."""
    return [
        EvaluationSection(
            name=r.name,
            runner=r.runner,
            device=r.device,
            eval_crops=r.eval_crops,
            table=split_table(r),
            confusion={k: s.confusion for k, s in r.splits.items()},
            class_names=r.class_names,
        )
        for r in load_evaluations(ws)
    ]
