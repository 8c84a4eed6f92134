"""The two sides of a comparison, read as records, and whether they share a machine.

Workspaces, results/ folders and result files are read by ``qbench.reports.sources`` (shared
with the reports); a saved baseline is one :class:`RegressBaseline` record.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from qbench.errors import QBenchError
from qbench.records import BenchResult, Record
from qbench.records.io import read_json_object
from qbench.regress.options import BASELINE_KIND
from qbench.reports.sources import baseline_first, load_source


@dataclass
class RegressBaseline(Record):
    """What ``qbench regress --save-baseline`` writes: every result of one side, in one file."""

    KIND = "regress baseline"
    REWRITE = "save it again with 'qbench regress --save-baseline FILE'"

    kind: Literal["qbench-regress-baseline"]  # tells this file from a single result file
    source: str  # the workspace or path the results were loaded from
    created: str
    results: list[BenchResult]


@dataclass
class ResultSet:
    """The records of one side of the comparison, keyed by mode (FP32 first)."""

    source: str
    results: dict[str, BenchResult]

    def ok(self) -> dict[str, BenchResult]:
        return {m: r for m, r in self.results.items() if r.ok and r.latency}


def _keyed(results: list[BenchResult]) -> dict[str, BenchResult]:
    return {r.mode: r for r in sorted(results, key=lambda r: baseline_first(r.mode))}


def load_results(path: str | Path, what: str = "baseline") -> ResultSet:
    """Results from a results JSON file, a results/ folder, a workspace or a saved baseline file."""
    path = Path(path)
    if not path.exists():
        raise QBenchError(
            f"{what} {path} does not exist; pass a results JSON file, a results/ folder, a workspace "
            "or a file written by 'qbench regress --save-baseline'."
        )
    if path.is_file():
        data = read_json_object(path, what)
        if data.get("kind") == BASELINE_KIND:
            saved = RegressBaseline.from_dict(data, f"{what} {path}")
            if not saved.results:
                raise QBenchError(
                    f"{what} {path} holds no result records; save it again from a benched workspace."
                )
            return ResultSet(str(path), _keyed(saved.results))
    return ResultSet(str(path), _keyed(load_source(path).results))


def save_baseline(results: ResultSet, path: str | Path) -> Path:
    """All of ``results`` in one RegressBaseline file that ``load_results`` reads back (a CI artifact)."""
    record = RegressBaseline(
        kind=BASELINE_KIND,
        source=results.source,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        results=list(results.results.values()),
    )
    return record.save_json(Path(path))


def _machine(result: BenchResult) -> str | None:
    if result.env is None:
        return None
    return result.env.machine_label(with_gpu=result.device.startswith("cuda"))


def _software_difference(base: BenchResult, cur: BenchResult) -> str:
    """What differs between two environments of one machine label: threads, library versions."""
    assert base.env is not None and cur.env is not None
    parts = []
    if base.env.torch_threads != cur.env.torch_threads:
        parts.append(f"{base.env.torch_threads} -> {cur.env.torch_threads} threads")
    libraries = sorted(set(base.env.libraries) | set(cur.env.libraries))
    for name in libraries:
        b, c = base.env.libraries.get(name), cur.env.libraries.get(name)
        if b != c:
            parts.append(f"{name} {b or 'absent'} -> {c or 'absent'}")
    return ", ".join(parts) or "other CPU flags"


def machine_warnings(baseline: ResultSet, current: ResultSet, modes: list[str]) -> list[str]:
    """One sentence per distinct environment mismatch (EnvRecord.fingerprint) among the compared variants."""
    seen: dict[str, list[str]] = {}
    for mode in modes:
        b, c = baseline.results[mode], current.results[mode]
        if b.env is None or c.env is None or b.env.fingerprint() == c.env.fingerprint():
            continue
        base_machine, cur_machine = _machine(b), _machine(c)
        if base_machine != cur_machine:
            what = f"baseline was measured on {base_machine!r} but current on {cur_machine!r}"
        else:
            what = f"baseline was measured on {base_machine!r} with other settings ({_software_difference(b, c)})"
        seen.setdefault(what, []).append(mode)
    return [
        f"{what} ({', '.join(modes)}); latencies from different machines or environments are not comparable."
        for what, modes in seen.items()
    ]
