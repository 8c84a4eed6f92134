"""The workspace: plain files under runs/<exp>/ that every step reads and writes.

    baseline/model.pt, baseline/train.json
    variants/<mode>/<artifact>, variants/<mode>/variant.json
    results/<mode>.json
    reports/...

Every JSON file is a typed record of ``qbench.records`` (with ``schema_version``), written
atomically (temp file in the same folder, fsync, rename) so an interrupted command never
leaves a half-written record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from qbench.errors import QBenchError
from qbench.records.io import atomic_path, write_text

__all__ = ["Workspace", "atomic_path", "write_text"]


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
        if not self.results_dir.is_dir():
            return []
        paths = sorted(self.results_dir.glob("*.json"))
        return sorted(paths, key=lambda p: (p.stem != "fp32", p.stem))

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def require_baseline(self) -> None:
        if not self.model_path.is_file():
            raise QBenchError(
                f"no baseline in {self.root}; run 'qbench baseline --train' (or --import CKPT) first."
            )
