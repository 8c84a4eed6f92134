"""Atomic, strict JSON I/O: the only code that touches a workspace JSON file on disk.

Every write goes to a temporary file in the same folder, is fsynced and renamed into place,
so an interrupted command never leaves a half-written record. Reads turn a missing, corrupt
or foreign file into a one-sentence user error.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qbench.errors import QBenchError


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise QBenchError(
            f"cannot write {path} ({exc.strerror or exc}); pass a folder you can write to."
        ) from None
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


def clean_json(obj: Any) -> Any:
    """Make ``obj`` strict JSON: NaN/inf become null (JSON has no such numbers), paths strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dump_json(data: Any) -> str:
    return json.dumps(clean_json(data), indent=2, allow_nan=False) + "\n"


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: Path, data: dict[str, Any]) -> Path:
    return write_text(path, dump_json(data))


def read_json_object(path: Path, what: str = "record") -> dict[str, Any]:
    """Read a JSON object, turning a missing or corrupt file into a user error."""
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
    return data
