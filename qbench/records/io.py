"""Atomic, strict JSON I/O: the only code that touches a workspace JSON file on disk.

Every write goes to a temporary file in the same folder, is fsynced and renamed into place,
so an interrupted command never leaves a half-written record. The temporary file's name
carries the writer's process id (``.<name>.<pid>.<random>.tmp``): a write killed before its
rename leaves that file behind, and the next write into the folder (or the next command that
locks the workspace) removes every such file whose writer is gone. Reads turn a missing,
corrupt or foreign file into a one-sentence user error, and so do failed writes (read-only
folder, full disk): the sentence names the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qbench.errors import QBenchError

TEMP_SUFFIX = ".tmp"
# .<name>.<pid>.<mkstemp's random part>.tmp; the random part has no dots
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")
# .<name>.<random>.tmp, from a qbench that did not record the writer: stale once this old
_LEGACY_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp$")
LEGACY_TEMP_MAX_AGE_S = 3600.0
HASH_CHUNK = 1 << 20


def write_error(path: Path, exc: OSError) -> QBenchError:
    """A failed write as one sentence naming the folder (read-only, full, missing permission)."""
    folder = Path(path).parent
    return QBenchError(
        f"cannot write {Path(path).name} in {folder} ({exc.strerror or exc}); "
        "make that folder writable (or free space there), or pass another one."
    )


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine; a zombie (exited, not yet reaped) does not:
    it will write nothing more."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:  # Linux: the state after the command name in /proc/<pid>/stat; Z is a zombie
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def is_stale_temp(path: Path, now: float | None = None) -> bool:
    """A temporary file of an atomic write whose writer is gone (killed before its rename)."""
    match = _TEMP_NAME.match(path.name)
    if match:
        return not pid_alive(int(match["pid"]))
    if _LEGACY_TEMP_NAME.match(path.name):
        try:
            age = (now or time.time()) - path.stat().st_mtime
        except OSError:
            return False
        return age > LEGACY_TEMP_MAX_AGE_S
    return False


def remove_stale_temps(folder: Path, recursive: bool = False) -> list[Path]:
    """Delete the temporary files of interrupted writes in ``folder`` (and below); those removed.

    Files whose writer still runs are left alone, so this is safe beside another writer. A
    folder that cannot be written is left as it is: the write that follows says so.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    candidates = folder.rglob(f".*{TEMP_SUFFIX}") if recursive else folder.glob(f".*{TEMP_SUFFIX}")
    now = time.time()
    for path in candidates:
        if path.is_file() and is_stale_temp(path, now):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it into place.

    An OSError while writing (in the caller's block too) becomes one sentence naming the folder;
    the temporary file is removed on every way out but SIGKILL, and the next write here removes
    a killed writer's.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        # mkstemp creates 0600; give the final file the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        _fsync_folder(path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        tmp_path.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (a power cut after it keeps the new file); best effort."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sha256_of(path: Path) -> str | None:
    """sha256 of a file, or of a folder's files (relative names and contents, in name order);
    None when ``path`` does not exist."""
    path = Path(path)
    if path.is_file():
        return _file_sha256(path)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{_file_sha256(file)}\n".encode())
    return digest.hexdigest()


# within one process a file is hashed once while it stays the same file (inode, size, mtime):
# 'qbench quantize' records the baseline's hash in every variant, 'run' checks them all
_HASHES: dict[tuple[str, int, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(HASH_CHUNK):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


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
            f"{what} {path} is not valid JSON ({exc}); pass a file qbench wrote, or delete this one and "
            "rerun the step that writes it."
        ) from None
    if not isinstance(data, dict):
        raise QBenchError(
            f"{what} {path} is not a JSON object; pass a file qbench wrote, or delete this one and rerun its step."
        )
    return data
