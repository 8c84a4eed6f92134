"""Checks a command runs before its work starts: names, devices, folders it writes, files it reads.

A read-only output folder used to surface as a traceback after the training or the bench had
run (the work was lost), ``--device cuda`` on a machine without a GPU quietly ran on the CPU,
and ``--exp ''`` wrote into the runs folder itself. Each check here raises a
:class:`~qbench.errors.QBenchError` with one sentence naming the fix, and changes nothing on
disk: writability is tested with an unnamed temporary file (``O_TMPFILE``) in the folder, or in
its nearest existing parent when the folder is still to be made.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from qbench.errors import QBenchError
from qbench.records.config import check_device


def check_name(name: str, flag: str = "--exp") -> str:
    """A workspace (experiment) name: one plain folder name, not empty, no path in it."""
    if not name or not name.strip():
        raise QBenchError(f"{flag} is empty; pass a name such as {flag} baseline-v2.")
    if name in (".", "..") or "/" in name or "\\" in name or os.sep in name:
        raise QBenchError(
            f"{flag} {name!r} is a path, not a name; pass a plain folder name "
            "(and --runs-dir for the folder that holds it)."
        )
    if name != name.strip() or re.search(r"[\x00-\x1f\x7f]", name):
        raise QBenchError(f"{flag} {name!r} has control characters or edge spaces; pass a plain name.")
    return name


def require_device(device: str, flag: str = "--device") -> None:
    """``device`` must be spelled right and exist on this machine (a CUDA index included)."""
    check_device(device, flag)
    if device == "cpu":
        return
    from qbench.capabilities import missing

    reason = missing("cuda")
    if reason:
        raise QBenchError(f"{flag} {device} was given but torch here has {reason}; use {flag} cpu.")
    index = int(device.partition(":")[2] or 0)
    import torch

    count = torch.cuda.device_count()
    if index >= count:
        raise QBenchError(
            f"{flag} {device}: this machine has {count} CUDA device(s); pass cuda:0 to cuda:{count - 1}."
        )


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def require_writable_folder(folder: str | os.PathLike[str], flag: str) -> Path:
    """``folder`` (made later if missing) must be a folder this process can create files in."""
    folder = Path(folder)
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise QBenchError(f"{flag}: {base} is a file, not a folder; pass a folder.")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        shown = base if folder.is_absolute() else Path(os.path.relpath(base))
        where = folder if base == Path(os.path.abspath(folder)) else f"{folder} (in {shown})"
        raise QBenchError(
            f"cannot write into {where} ({exc.strerror or exc}); make it writable or pass another folder with {flag}."
        ) from None
    return folder


def require_writable_file(path: str | os.PathLike[str], flag: str) -> Path:
    """An output file: not a folder, and its folder writable (files are replaced atomically)."""
    path = Path(path)
    if path.is_dir():
        raise QBenchError(f"{flag} {path} is a folder; pass a file name.")
    require_writable_folder(path.parent, flag)
    return path


def require_readable_file(path: str | os.PathLike[str], flag: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise QBenchError(f"{flag} {path} does not exist; check the path.")
    if not path.is_file():
        raise QBenchError(f"{flag} {path} is not a file; pass a file.")
    if not os.access(path, os.R_OK):
        raise QBenchError(f"{flag} {path} cannot be read (permission denied); make it readable.")
    return path


def require_readable_folder(folder: str | os.PathLike[str], flag: str) -> Path:
    folder = Path(folder)
    if not folder.exists():
        raise QBenchError(f"{flag} {folder} does not exist; pass an existing folder.")
    if not folder.is_dir():
        raise QBenchError(f"{flag} {folder} is not a folder; pass a folder.")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise QBenchError(f"{flag} {folder} cannot be read (permission denied); make it readable.")
    return folder
