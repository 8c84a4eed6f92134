"""Accuracy parts shared by the training record and the bench result."""

from __future__ import annotations

from dataclasses import dataclass

from qbench.records.base import Record


@dataclass
class ClassMetrics(Record):
    label: str
    precision: float
    recall: float
    f1: float
    support: int
