"""Unreadable images are found before training, not in the middle of it (or after it).

A folder data set is a list of files; one that is not an image (a truncated download, an HTML
error page saved as .jpg, a zero-byte file) used to stop training with a PIL traceback when the
loader reached it, and a bad file in val/ only after every training epoch had run. So the
builders of folder data sets check every file first with PIL's header decode
(``Image.open`` + ``verify()``: the header, and the chunk structure and CRCs of a PNG, without
decoding pixels; a quarter to half of a full decode's time), name the unreadable ones in one
sentence, and leave them out when ``DataConfig.skip_bad_images`` (``--skip-bad-images``) asks.
A file whose header reads but whose pixel data is damaged is caught when it is loaded
(:func:`load_image`), as one sentence naming it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from qbench.errors import QBenchError

MAX_LISTED = 5  # unreadable files named in a message (the count covers the rest)
FIX = "replace or delete them, or pass --skip-bad-images to go on without them"
# the check is file reading more than decoding: threads overlap the reads (network or cold disks)
CHECK_THREADS = min(8, os.cpu_count() or 1)
# path -> (size, mtime_ns, reason or None): a process checks an unchanged file once (train/ is
# listed twice, for the training and the test-time transforms; 'qbench run' checks before starting)
_checked: dict[str, tuple[int, int, str | None]] = {}


class UnreadableImage(QBenchError):
    """An image that fails to load. Raised in a DataLoader worker, it reaches the training
    process rebuilt from 'Caught ... Original Traceback ...' text: the sentence is kept alone."""

    def __init__(self, message: str) -> None:
        lines = [line for line in message.splitlines() if line.strip()]
        prefix = f"{__name__}.{type(self).__name__}: "
        if len(lines) > 1 and lines[-1].startswith(prefix):
            message = lines[-1].removeprefix(prefix)
        super().__init__(message)


@dataclass(frozen=True)
class BadImage:
    path: Path
    reason: str


def _reason(path: str) -> str | None:
    """Why ``path`` is not a readable image (None: it is), from its header decode."""
    from PIL import Image

    try:
        stat = os.stat(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    known = _checked.get(path)
    if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
        return known[2]
    reason = None
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as exc:  # PIL raises many types for broken files (OSError, SyntaxError, ...)
        text = " ".join(str(exc).replace(repr(path), "").replace(path, "").split())  # named already
        reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    _checked[path] = (stat.st_size, stat.st_mtime_ns, reason)
    return reason


def find_unreadable(paths: Iterable[str | Path]) -> list[BadImage]:
    """The files of ``paths`` (each checked once) that PIL cannot read, in path order."""
    unique = sorted({str(p) for p in paths})
    if len(unique) < 64:
        reasons = [_reason(p) for p in unique]
    else:
        with ThreadPoolExecutor(CHECK_THREADS) as pool:
            reasons = list(pool.map(_reason, unique, chunksize=64))
    return [BadImage(Path(p), r) for p, r in zip(unique, reasons, strict=True) if r is not None]


def describe(bad: Sequence[BadImage], where: Path) -> str:
    """'2 images under DIR cannot be read (a.png: reason; b.png: reason)', the list capped."""
    shown = "; ".join(f"{b.path}: {b.reason}" for b in bad[:MAX_LISTED])
    more = f"; and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
    noun = "image" if len(bad) == 1 else "images"
    return f"{len(bad)} {noun} under {where} cannot be read ({shown}{more})"


def require_readable(paths: Iterable[str | Path], where: Path, skip: bool) -> list[BadImage]:
    """Check every file of ``paths``: unreadable ones are an error naming them, or (``skip``)
    the list returned for the caller to leave out."""
    bad = find_unreadable(paths)
    if bad and not skip:
        raise QBenchError(f"{describe(bad, where)}; {FIX}.")
    return bad


def load_image(path: str):
    """torchvision's loader (PIL, RGB) with a damaged file turned into one sentence naming it."""
    from torchvision.datasets.folder import default_loader

    try:
        return default_loader(path)
    except Exception as exc:  # damaged pixel data past a readable header
        raise UnreadableImage(
            f"image {path} cannot be read ({type(exc).__name__}: {exc}); replace or delete it."
        ) from None
