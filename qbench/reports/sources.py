"""Load workspaces (or results folders and files) as typed records and label them: shared by reports and regress.

A :class:`Source` is one workspace's records: its results, the variant records beside them
and the training record. Labels name the machine (from the recorded environment) and, when
two sources share a machine, the workspace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qbench.errors import QBenchError
from qbench.records import BenchResult, EnvRecord, TrainRecord, VariantRecord
from qbench.workspace import FAILED, Workspace

BASELINE_MODE = "fp32"


def baseline_first(mode: str) -> tuple[bool, str]:
    """Sort key: FP32 first, then the other modes by name."""
    return (mode != BASELINE_MODE, mode)


@dataclass
class Source:
    """One workspace's records (or a set of result files that share a workspace)."""

    root: Path
    results: list[BenchResult]
    train: TrainRecord | None = None
    variants: dict[str, VariantRecord] = field(default_factory=dict)
    label: str = ""

    @property
    def baseline(self) -> BenchResult | None:
        return next((r for r in self.results if r.mode == BASELINE_MODE), None)

    @property
    def env(self) -> EnvRecord | None:
        """The environment of the first result that recorded one, else the training run's."""
        env = next((r.env for r in self.results if r.env is not None), None)
        return env or (self.train.env if self.train else None)

    @property
    def machine(self) -> str:
        env = self.env
        if env is None:
            return "unknown machine"
        return env.machine_label(with_gpu=any(r.device.startswith("cuda") for r in self.results))

    def variant(self, result: BenchResult) -> VariantRecord | None:
        """The variant record beside the result, else the copy the result embeds."""
        return self.variants.get(result.mode) or result.variant


def _json_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json") if p.is_file())


def _locate(path: Path) -> tuple[Path, Path, list[Path] | None]:
    """Map a user-given path to (workspace root, results folder, explicit result files or None for all).

    Accepted: a result file, a workspace (results/ inside), a results/ folder, any folder that
    directly holds result JSON files (e.g. a downloaded CI artifact: it is its own root), and a
    runs/ folder holding the default experiment."""
    if path.is_file():
        parent = path.parent
        root = parent.parent if parent.name == "results" else parent
        return root, parent, [path]
    if (path / "results").is_dir():
        return path, path / "results", None
    if path.name == "results":
        return path.parent, path, None
    if _json_files(path):
        return path, path, None
    if (path / "default" / "results").is_dir():
        return path / "default", path / "default" / "results", None
    return path, path / "results", None  # no results here: load_source says what to pass or run


def _no_results(root: Path, results_dir: Path) -> QBenchError:
    ws = Workspace(root)
    if results_dir.is_dir() or ws.baseline_dir.is_dir() or ws.variants_dir.is_dir():
        return QBenchError(
            f"no results in {results_dir}; run 'qbench bench' (or 'qbench run') for that workspace first."
        )
    return QBenchError(
        f"no results in {root}: it holds neither result JSON files nor a results/ folder; pass a workspace, "
        "a folder of result JSON files or one result file."
    )


def load_source(path: str | Path | Workspace) -> Source:
    """Read one workspace, results folder or result file (and the workspace around it)."""
    if isinstance(path, Workspace):
        root, results_dir, files = path.root, path.results_dir, None
    else:
        path = Path(path)
        if not path.exists():
            raise QBenchError(f"{path} does not exist; pass a workspace folder or a results JSON file.")
        root, results_dir, files = _locate(path)
    ws = Workspace(root)
    paths = files if files is not None else _json_files(results_dir)
    if not paths:
        raise _no_results(root, results_dir)
    results = sorted((BenchResult.from_json(p) for p in paths), key=lambda r: baseline_first(r.mode))
    for r in results:  # a later bench that failed is kept beside the good record: say so
        failed = results_dir / FAILED / f"{r.mode}.json"
        if r.ok and failed.is_file():
            last = BenchResult.from_json(failed)
            r.notes.append(
                f"the last bench ({last.created}) failed: {last.skip_reason}; this is the earlier result"
            )
    variants = {
        r.mode: VariantRecord.from_json(ws.variant_json(r.mode))
        for r in results
        if ws.variant_json(r.mode).is_file()
    }
    train = TrainRecord.from_json(ws.train_json) if ws.train_json.is_file() else None
    return Source(root=root, results=results, train=train, variants=variants)


def load_sources(paths: list[str | Path | Workspace]) -> list[Source]:
    """Load several sources and give each a unique label (machine, then workspace if needed)."""
    merged: dict[Path, Source] = {}
    for s in (load_source(p) for p in paths):  # two result files of one workspace are one source
        key = s.root.resolve()
        if key not in merged:
            merged[key] = s
            continue
        have = merged[key]
        modes = {r.mode for r in have.results}
        have.results.extend(r for r in s.results if r.mode not in modes)
        have.results.sort(key=lambda r: baseline_first(r.mode))
        have.variants = {**s.variants, **have.variants}
    sources = list(merged.values())
    machines = [s.machine for s in sources]
    seen: dict[str, int] = {}
    for s in sources:
        s.label = s.machine if machines.count(s.machine) == 1 else f"{s.machine} [{s.root.name}]"
        n = seen.get(s.label, 0)  # same machine and same workspace name: number them
        seen[s.label] = n + 1
        if n:
            s.label = f"{s.label} #{n + 1}"
    return sources
