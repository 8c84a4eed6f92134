"""The workspace: plain files under runs/<exp>/ that every step reads and writes.

    baseline/model.pt, baseline/train.json
    variants/<mode>/<artifact>, variants/<mode>/variant.json
    results/<mode>.json
    reports/...

Every JSON file carries ``schema_version``; every write is atomic (temp file in the same
folder, fsync, rename) so an interrupted command never leaves a half-written record.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qbench.errors import QBenchError

SCHEMA_VERSION = 1


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; give the final file the permissions a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _clean(obj: Any) -> Any:
    """Make ``obj`` strict JSON: NaN/inf become null (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` atomically, adding ``schema_version`` when it is missing."""
    payload = {"schema_version": SCHEMA_VERSION, **data}
    text = json.dumps(_clean(payload), indent=2, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def read_json(path: Path, what: str = "record") -> dict[str, Any]:
    """Read a workspace JSON file, turning a missing or corrupt file into a user error."""
    path = Path(path)
    if not path.is_file():
        raise QBenchError(f"{what} {path} does not exist; run the step that writes it first.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise QBenchError(
            f"{what} {path} is not valid JSON ({exc}); delete it and rerun the step that writes it."
        ) from None
    if not isinstance(data, dict):
        raise QBenchError(f"{what} {path} is not a JSON object; delete it and rerun its step.")
    version = data.get("schema_version")
    if version is None or version > SCHEMA_VERSION:
        raise QBenchError(
            f"{what} {path} has schema_version {version!r}, this qbench reads up to "
            f"{SCHEMA_VERSION}; upgrade qbench or rerun the step that writes it."
        )
    return data


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
