"""A fork server for the bench: one process imports torch and the back-ends and builds the test
split once, then forks a fresh child per variant.

    python -m qbench.harness.forkserver PARENT_PID     (started and driven by :class:`ForkServer`)

Why a server rather than forking the caller: the caller (``qbench run``) may have trained a model
and run conversions, and its allocator caches, thread pools and oneDNN primitive caches are what
a variant must not inherit. The server has done nothing but import modules and build the test
split, with one intra-op thread so that no OpenMP pool exists for ``fork`` to break; each child
therefore starts as a fresh process would, without paying the start-up again. A child sets the
thread count the server started with, benches one variant (qbench.harness.worker.run_job),
writes its BenchResult and exits, and its allocations go with it.

Protocol, in text lines: the server prints ``QBENCH-READY`` once, then for each job path read
from stdin forks, waits for the child and prints ``QBENCH-DONE <exit code>`` (negative: killed
by that signal). Children print ``QBENCH-PROGRESS`` lines on the same stdout and write their
stderr to ``stderr.txt`` beside the job file.

The server dies with the bench that started it, and each child with the server
(:func:`die_with_parent`): a killed bench must leave no variant measuring on its cores and
holding its workspace lock (the lock's open file is inherited), which would refuse the next bench.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from qbench import lock

READY = "QBENCH-READY"
DONE = "QBENCH-DONE"
# the back-ends' libraries: importing them is code the children share, not state a variant leaves behind
PRELOAD = ("torchvision", "onnxruntime", "torchao")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# how often a server that the kernel does not watch for it (no prctl) checks that the bench lives
PARENT_POLL_S = 0.2


def available() -> bool:
    """Fork servers need os.fork (not on Windows)."""
    return hasattr(os, "fork")


def die_with_parent(parent: int) -> bool:
    """Have the kernel SIGKILL this process when ``parent`` dies; whether it will (Linux only).

    The request is cleared by fork, so the server and each child make their own, first thing.
    A parent that died before the request is not watched for (this process was reparented
    already): getppid shows it, and this process dies now, as the death signal would have made it.
    """
    watched = (
        sys.platform == "linux"
        and ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL)) == 0
    )
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    return watched


def _preload() -> int:
    """Import what every child would import; return the intra-op thread count to give children."""
    import torch

    from qbench.harness import sweep  # noqa: F401  (the harness and its records)
    from qbench.harness.worker import import_plugins
    from qbench.runners.base import RUNNERS

    threads = torch.get_num_threads()
    # a single thread keeps torch from starting an OpenMP pool here: a forked child of a process
    # whose pool exists can hang in its first parallel region
    torch.set_num_threads(1)
    for name in PRELOAD:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    RUNNERS.names()  # imports the built-in runner modules
    import_plugins()
    return threads


def _child(job: dict, stderr_path: Path, threads: int, server: int) -> None:
    """In the forked child: bench the job, then leave without running the server's exit code."""
    code = 1
    try:
        die_with_parent(server)
        fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)  # the job queue is the server's, not the child's
        os.close(null)
        import torch

        from qbench.harness.worker import FORKED_PROCESS, run_job

        torch.set_num_threads(threads)
        code = run_job(job, FORKED_PROCESS)
    except BaseException:  # whatever happens, the child must not return into the server's loop
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, parent: int, watched: bool) -> int | None:
    """Child ``pid``'s wait status; None when the bench died first (the child is killed then).

    Where the kernel does not watch the bench for this server (no prctl), the server looks
    itself while a child runs; between jobs, the bench's death ends the loop with EOF.
    """
    if watched:
        return os.waitpid(pid, 0)[1]
    while not (done := os.waitpid(pid, os.WNOHANG))[0]:
        if os.getppid() != parent:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(PARENT_POLL_S)
    return done[1]


def serve(parent: int) -> int:
    """Serve jobs until stdin closes; ``parent`` is the bench's pid, the process to die with."""
    watched = die_with_parent(parent)
    threads = _preload()
    from qbench.harness.sweep import test_split

    server = os.getpid()
    print(READY, flush=True)
    while line := sys.stdin.readline():
        job_path = Path(line.strip())
        job = json.loads(job_path.read_text(encoding="utf-8"))
        # built once here, so every later child finds it built; a child meets any error again and records it
        with contextlib.suppress(Exception):
            test_split(job["meta"])
        pid = os.fork()
        if pid == 0:
            _child(job, job_path.parent / "stderr.txt", threads, server)
        status = _wait(pid, parent, watched)
        if status is None:
            return 1
        print(f"{DONE} {os.waitstatus_to_exitcode(status)}", flush=True)
    return 0


class ForkServer:
    """The bench's side: starts the server on first use (again after it died), one job at a time."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._stderr = None
        self.last_error = ""  # the server's stderr when it died without an answer

    def start(self) -> ForkServer:
        """Start the server now (its imports then overlap with the caller's own set-up).

        The kernel's parent-death signal follows the thread that started the server, not the
        process: start and close it on a thread that lives as long as it is used (bench_modes does).
        """
        if self._proc is None or self._proc.poll() is not None:
            self.close()
            self._start()
        return self

    def _start(self) -> None:
        # closed in close(), after the server is gone
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "qbench.harness.forkserver", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            # the workspace lock's open file: the lock lasts while the server or a child may write
            pass_fds=lock.held_fds(),
        )

    def run(self, job_path: Path, on_line: Callable[[str], None]) -> int | None:
        """Run one job in a fresh child; its exit code, or None when the server itself died."""
        self.start()
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(f"{job_path}\n")
            proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died starting up: its stderr says why, read below
        for line in proc.stdout:
            if line.startswith(DONE):
                return int(line.split()[1])
            if line.strip() != READY:
                on_line(line)
        proc.wait()
        assert self._stderr is not None
        self._stderr.seek(0)
        self.last_error = (
            self._stderr.read().strip() or f"the fork server exited with status {proc.returncode}"
        )
        self.close()
        return None

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()  # EOF ends the server's loop
            if proc.stdout is not None:
                proc.stdout.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1])))
