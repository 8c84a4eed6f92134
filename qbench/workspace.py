"""The workspace: plain files under runs/<exp>/ that every step reads and writes.

    baseline/model.pt, baseline/train.json
    variants/<mode>/<artifact>, variants/<mode>/variant.json
    results/<mode>.json, results/failed/<mode>.json (a failed bench beside a good record)
    reports/...
    .qbench.lock (qbench.lock: held by the command writing the workspace)

Every JSON file is a typed record of ``qbench.records`` (with ``schema_version``), written
atomically (temp file in the same folder, fsync, rename) so an interrupted command never
leaves a half-written record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from qbench.errors import QBenchError
from qbench.records.io import atomic_path, remove_stale_temps, write_text
from qbench.records.result import BenchResult

__all__ = ["CACHE_ENV", "Workspace", "atomic_path", "cache_dir", "write_text"]

FAILED = "failed"  # results/failed/: failed benches kept beside the good record they did not replace
# qbench's per-machine cache, shared by all workspaces (measured limits, TensorRT timing caches)
CACHE_ENV = "QBENCH_CACHE_DIR"


def cache_dir() -> Path:
    """$QBENCH_CACHE_DIR, else ~/.cache/qbench."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "qbench"


@dataclass(frozen=True)
class Workspace:
    """Paths of one experiment workspace, ``runs/<exp>/`` by default."""

    root: Path

    @classmethod
    def at(cls, runs_dir: str | os.PathLike[str] = "runs", exp: str = "default") -> Workspace:
        return cls(Path(runs_dir) / exp)

    # baseline
    @property
    def baseline_dir(self) -> Path:
        return self.root / "baseline"

    @property
    def model_path(self) -> Path:
        return self.baseline_dir / "model.pt"

    @property
    def train_json(self) -> Path:
        return self.baseline_dir / "train.json"

    # variants
    @property
    def variants_dir(self) -> Path:
        return self.root / "variants"

    def variant_dir(self, mode: str) -> Path:
        return self.variants_dir / mode

    def variant_json(self, mode: str) -> Path:
        return self.variant_dir(mode) / "variant.json"

    def variant_modes(self) -> list[str]:
        """Modes with a variant.json, FP32 first and the rest in name order."""
        if not self.variants_dir.is_dir():
            return []
        modes = sorted(p.parent.name for p in self.variants_dir.glob("*/variant.json"))
        return sorted(modes, key=lambda m: (m != "fp32", m))

    # results and reports
    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    def result_path(self, mode: str) -> Path:
        return self.results_dir / f"{mode}.json"

    def result_paths(self) -> list[Path]:
        """The result records, FP32 first (not results/failed/: those are failures, not results)."""
        if not self.results_dir.is_dir():
            return []
        paths = sorted(self.results_dir.glob("*.json"))
        return sorted(paths, key=lambda p: (p.stem != "fp32", p.stem))

    def failed_result_path(self, mode: str) -> Path:
        return self.results_dir / FAILED / f"{mode}.json"

    def save_result(self, result: BenchResult) -> Path:
        """Write a bench result where it belongs; the path written.

        A failed bench never replaces a good (``ok``) record: it goes to results/failed/<mode>.json
        beside it, where ``qbench run`` and the reports find it. Any other result becomes
        results/<mode>.json and clears an earlier failure of that mode.
        """
        path, failed = self.result_path(result.mode), self.failed_result_path(result.mode)
        good = self._good_result(result.mode) if result.status == "failed" else None
        if good is not None:
            note = f"{result.mode}: the earlier result {path} ({good.created or 'undated'}) is kept"
            if note not in result.notes:
                result.notes.append(note)
            result.save_json(failed)
            return failed
        result.save_json(path)
        failed.unlink(missing_ok=True)
        return path

    def _good_result(self, mode: str) -> BenchResult | None:
        try:
            result = BenchResult.from_json(self.result_path(mode))
        except QBenchError:  # missing or unreadable: nothing worth keeping
            return None
        return result if result.ok else None

    def remove_stale_temps(self) -> list[Path]:
        """Temporary files of writes killed before their rename, anywhere in the workspace."""
        return remove_stale_temps(self.root, recursive=True)

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def require_baseline(self) -> None:
        if not self.model_path.is_file():
            raise QBenchError(
                f"no baseline in {self.root}; run 'qbench baseline --train' (or --import CKPT) first."
            )
