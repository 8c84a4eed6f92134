"""The two sides of a comparison, read as records, and whether they share a machine.

Workspaces, results/ folders and result files are read by ``qbench.reports.sources`` (shared
with the reports); a saved baseline is one :class:`RegressBaseline` record. A baseline store is
a folder of them named by machine fingerprint (``EnvRecord.fingerprint``: CPU model and flags,
GPUs, threads, library versions), so one store serves several fixed machines.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from qbench.errors import QBenchError
from qbench.records import BenchResult, Record, RecordError
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
    fingerprint: str = ""  # EnvRecord.fingerprint() of the machine that measured them


@dataclass
class ResultSet:
    """The records of one side of the comparison, keyed by mode (FP32 first)."""

    source: str
    results: dict[str, BenchResult]

    def ok(self) -> dict[str, BenchResult]:
        return {m: r for m, r in self.results.items() if r.ok and r.latency}

    def fingerprint(self) -> str | None:
        """The measuring machine's fingerprint (of the first variant that recorded an environment)."""
        env = next((r.env for r in self.results.values() if r.env is not None), None)
        return None if env is None else env.fingerprint()

    def machine(self) -> str:
        env = next((r.env for r in self.results.values() if r.env is not None), None)
        return "an unknown machine" if env is None else env.machine_label()


def _keyed(results: list[BenchResult]) -> dict[str, BenchResult]:
    return {r.mode: r for r in sorted(results, key=lambda r: baseline_first(r.mode))}


def load_results(path: str | Path, what: str = "baseline") -> ResultSet:
    """Results from a results JSON file, a folder of them (results/ or any other), a workspace or a
    saved baseline file."""
    path = Path(path)
    if not path.exists():
        raise QBenchError(
            f"{what} {path} does not exist; pass a results JSON file, a folder of them, a workspace "
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
    try:
        source = load_source(path)
    except RecordError:
        if path.is_dir() and _holds_saved_baselines(path):
            raise QBenchError(
                f"{what} {path} is a folder of baselines saved by 'qbench regress --save-baseline'; pass it "
                f"as --baseline-store {path}, or one of its files as --baseline."
            ) from None
        raise
    return ResultSet(str(path), _keyed(source.results))


def _holds_saved_baselines(folder: Path) -> bool:
    for path in folder.glob("*.json"):
        try:
            if read_json_object(path).get("kind") == BASELINE_KIND:
                return True
        except QBenchError:
            continue
    return False


def save_baseline(results: ResultSet, path: str | Path) -> Path:
    """All of ``results`` in one RegressBaseline file that ``load_results`` reads back (a CI artifact).

    ``path`` an existing folder: the file is a store entry, ``<folder>/<fingerprint>.json``."""
    path = Path(path)
    fingerprint = results.fingerprint() or ""
    if path.is_dir():
        if not fingerprint:
            raise QBenchError(
                f"the results of {results.source} record no environment, so they cannot be stored by machine "
                f"fingerprint in {path}; save them to a file instead."
            )
        path = path / f"{fingerprint}.json"
    record = RegressBaseline(
        kind=BASELINE_KIND,
        source=results.source,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        results=list(results.results.values()),
        fingerprint=fingerprint,
    )
    return record.save_json(path)


def load_stored_baseline(store: str | Path, current: ResultSet) -> ResultSet:
    """The baseline in ``store`` that was measured on the current results' machine."""
    store = Path(store)
    fingerprint = current.fingerprint()
    if fingerprint is None:
        raise QBenchError(
            f"the current results in {current.source} record no environment to pick a stored baseline "
            "by; pass --baseline FILE instead."
        )
    path = store / f"{fingerprint}.json"
    if not path.is_file():
        raise QBenchError(
            f"{store} holds no baseline for this machine ({current.machine()}, fingerprint {fingerprint}); "
            f"store one from main with 'qbench regress --save-baseline {store}'."
        )
    return load_results(path, "stored baseline")


def _model_key(result: BenchResult) -> str:
    assert result.model is not None
    m = result.model
    return f"{m.name} ({m.num_classes} classes, {m.input_size}x{m.input_size} input)"


def check_same_model(baseline: ResultSet, current: ResultSet) -> None:
    """Refuse to compare latencies of different models, inputs or class counts."""
    sides = []
    for results in (baseline, current):
        keys = {_model_key(r) for r in results.ok().values() if r.model is not None}
        sides.append(keys)
    base_keys, cur_keys = sides
    if base_keys and cur_keys and base_keys != cur_keys:
        raise QBenchError(
            f"baseline {baseline.source} measured {', '.join(sorted(base_keys))} but current "
            f"{current.source} measured {', '.join(sorted(cur_keys))}; compare results of the same model, "
            "input size and class count."
        )


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
