"""The workspace lock: one command at a time writes a workspace.

Two commands writing one workspace at once would each overwrite the other's records (the last
writer wins, silently) and would time their variants while competing for the same cores. So a
command that writes takes an exclusive ``flock`` on ``<workspace>/.qbench.lock`` and writes its
holder (pid, command line, start time, host) into it; a second writer refuses with one sentence
naming the holder, or waits for it (``--wait-lock``). Read-only commands take no lock.

``flock`` belongs to the open file, not to a path or a pid, so the kernel releases it when the
last process holding the file dies, however it dies (SIGKILL included): no stale lock survives
a crash. The file itself stays (deleting a lock file races with a process about to lock it).
Processes started for the command (the bench's fork server and its children) inherit the open
file (:func:`held_fds`), so the lock lasts while any of them may still write. A qbench
process started by the holder for the same workspace (``baseline --nproc`` relaunches itself
under torchrun) finds the lock's path in ``QBENCH_HELD_LOCKS`` and goes on under its parent's lock.

Without ``fcntl`` (Windows), or on a file system without ``flock``, no lock is taken and
:attr:`WorkspaceLock.unsupported` says why.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qbench.errors import QBenchError
from qbench.records.io import pid_alive

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".qbench.lock"
ENV_HELD = "QBENCH_HELD_LOCKS"  # os.pathsep-separated lock files this process tree holds


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its holder wrote it into the lock file."""

    pid: int | None
    command: str
    started: str
    host: str

    @classmethod
    def parse(cls, text: str) -> Holder:
        fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
        pid = fields.get("pid", "")
        return cls(
            pid=int(pid) if pid.isdigit() else None,
            command=fields.get("command", ""),
            started=fields.get("started", ""),
            host=fields.get("host", ""),
        )

    def text(self) -> str:
        return f"pid: {self.pid}\ncommand: {self.command}\nstarted: {self.started}\nhost: {self.host}\n"

    def describe(self) -> str:
        """'pid 42 (qbench run --exp a, started 2025-01-01T10:00:00+0000)', for messages."""
        if self.pid is None:
            return "another qbench process (it has not written its name yet)"
        where = f" on {self.host}" if self.host and self.host != socket.gethostname() else ""
        text = f"pid {self.pid}{where} ({self.command or 'qbench'}, started {self.started or 'at an unknown time'})"
        if not where and not pid_alive(self.pid):
            text += ", which has exited while its worker processes still finish"
        return text


def _inherited() -> list[str]:
    return [p for p in os.environ.get(ENV_HELD, "").split(os.pathsep) if p]


class WorkspaceLock:
    """An exclusive lock on one workspace folder, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, root: str | os.PathLike[str], command: str) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self.command = command
        self.fd: int | None = None
        self.inherited = False  # a parent process holds it for us
        self.unsupported: str | None = None  # why no lock was taken, where locking is impossible

    def acquire(self, wait: bool = False, on_wait: Callable[[Holder], None] | None = None) -> WorkspaceLock:
        """Take the lock; if another process holds it, wait (``wait``, after ``on_wait(holder)``)
        or refuse with one sentence naming the holder."""
        if fcntl is None:
            self.unsupported = "this platform has no fcntl.flock"
            return self
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            key = str(self.path.resolve())
            if key in _inherited():
                self.inherited = True
                return self
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise QBenchError(
                f"cannot lock the workspace {self.root} ({exc.strerror or exc}); "
                "pass a workspace folder you can write to."
            ) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = read_holder(fd)
                if not wait:
                    raise QBenchError(
                        f"the workspace {self.root} is in use by {holder.describe()}; wait for it to "
                        "finish, or pass --wait-lock to start when it does."
                    ) from None
                if on_wait:
                    on_wait(holder)
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:  # e.g. ENOLCK: a file system without flock
                self.unsupported = f"{self.path.parent} does not support file locks ({exc.strerror or exc})"
                os.close(fd)
                return self
            holder = Holder(
                os.getpid(), self.command, time.strftime("%Y-%m-%dT%H:%M:%S%z"), socket.gethostname()
            )
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.text().encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        os.environ[ENV_HELD] = os.pathsep.join([*_inherited(), key])
        _HELD.append(self)
        return self

    def release(self) -> None:
        """Give the lock up (closing the file releases it once no child holds it any more)."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        with contextlib.suppress(ValueError):
            _HELD.remove(self)
        key = str(self.path.resolve())
        os.environ[ENV_HELD] = os.pathsep.join(p for p in _inherited() if p != key)
        if not os.environ[ENV_HELD]:
            del os.environ[ENV_HELD]
        os.close(fd)

    def __enter__(self) -> WorkspaceLock:
        return self if self.fd is not None or self.inherited or self.unsupported else self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


_HELD: list[WorkspaceLock] = []


def held_fds() -> tuple[int, ...]:
    """The open lock files of this process: pass them to the processes that write for it."""
    return tuple(lock.fd for lock in _HELD if lock.fd is not None)


def read_holder(fd_or_root: int | str | os.PathLike[str]) -> Holder:
    """The holder written into a lock file (an open descriptor, or a workspace folder)."""
    try:
        if isinstance(fd_or_root, int):
            text = os.pread(fd_or_root, 4096, 0).decode("utf-8", "replace")
        else:
            text = (Path(fd_or_root) / LOCK_NAME).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    return Holder.parse(text)
