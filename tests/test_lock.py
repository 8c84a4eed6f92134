"""The workspace lock and the atomic writer's clean-up: one writer at a time, nothing left behind.

Real processes throughout: a lock held by a process that is SIGKILLed is free again, a second
writer refuses (or waits with --wait-lock) naming the holder, a read-only command goes on, and
a temporary file of a write whose writer died is removed by the next write into its folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from qbench.errors import QBenchError
from qbench.lock import LOCK_NAME, WorkspaceLock, read_holder
from qbench.records.io import atomic_path, is_stale_temp, write_json
from qbench.workspace import Workspace

HOLD = textwrap.dedent(
    """
    import sys, time
    from qbench.lock import WorkspaceLock
    WorkspaceLock(sys.argv[1], "qbench bench --exp held").acquire()
    print("locked", flush=True)
    time.sleep(600)
    """
)


def _holder_process(root: Path) -> subprocess.Popen:
    """A process that takes the lock of ``root`` and sleeps; returns once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_writer_refuses_naming_the_holder_and_sigkill_frees_the_lock(tmp_path):
    holder = _holder_process(tmp_path)
    try:
        with pytest.raises(QBenchError) as info:
            WorkspaceLock(tmp_path, "qbench run").acquire()
        message = str(info.value)
        assert f"pid {holder.pid}" in message and "qbench bench --exp held" in message
        assert "--wait-lock" in message and message.endswith(".") and "\n" not in message
        assert read_holder(tmp_path).pid == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the kernel dropped the lock with its process: no stale lock to clear by hand
    lock = WorkspaceLock(tmp_path, "qbench run").acquire()
    assert read_holder(tmp_path).pid == os.getpid() and read_holder(tmp_path).command == "qbench run"
    lock.release()


def test_the_lock_lasts_while_a_worker_that_inherited_it_lives(tmp_path):
    """A command that dies while its worker (given the lock's file, as the bench's fork server is)
    still runs: the workspace stays locked until the worker is gone too."""
    spawn = textwrap.dedent(
        """
        import subprocess, sys
        from qbench.lock import WorkspaceLock, held_fds
        WorkspaceLock(sys.argv[1], "qbench bench").acquire()
        worker = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(600)"],
            pass_fds=held_fds(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        print(worker.pid, flush=True)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", spawn, str(tmp_path)], capture_output=True, text=True, check=True
    )
    worker = int(out.stdout)
    try:
        with pytest.raises(QBenchError, match="which has exited while its worker processes still finish"):
            WorkspaceLock(tmp_path, "qbench run").acquire()
    finally:
        os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while True:  # the worker is not our child: wait until it is gone (or a zombie) and its file closed
        try:
            WorkspaceLock(tmp_path, "qbench run").acquire().release()
            break
        except QBenchError:
            assert time.monotonic() < deadline, "the lock outlived every process holding it"
            time.sleep(0.05)


def test_cli_refuses_waits_or_goes_on_read_only(qbench_cli, tmp_path):
    ws = Workspace(tmp_path / "runs" / "default")
    ws.root.mkdir(parents=True)
    holder = _holder_process(ws.root)
    try:
        p = qbench_cli("bench", "--batch-sizes", "1")
        assert p.returncode == 2 and "is in use by pid" in p.stderr and "Traceback" not in p.stderr
        assert not ws.results_dir.exists()  # refused before any work
        p = qbench_cli("info")  # read-only: no lock taken
        assert p.returncode == 0, p.stderr
        waiter = subprocess.Popen(
            [sys.executable, "-m", "qbench.cli.main", "quantize", "--mode", "fp32", "--wait-lock"],
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)  # it is waiting, not failing
        assert waiter.poll() is None
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    _, err = waiter.communicate(timeout=120)
    # it got the lock, then met the next problem: this workspace has no baseline
    assert "waiting for pid" in err and "no baseline" in err and waiter.returncode == 2


def test_a_killed_writers_temporary_file_goes_with_the_next_write(tmp_path):
    dead = tmp_path / f".rec.json.{_dead_pid()}.abcd1234.tmp"
    live = tmp_path / f".rec.json.{os.getpid()}.efgh5678.tmp"
    legacy = tmp_path / ".model.onnx.k2j4h5g6.tmp"  # an older qbench's name: no pid in it
    for path in (dead, live, legacy):
        path.write_text("half a record")
    os.utime(legacy, (time.time() - 7200, time.time() - 7200))
    assert is_stale_temp(dead) and not is_stale_temp(live) and is_stale_temp(legacy)
    write_json(tmp_path / "other.json", {"x": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "other.json"])


def test_workspace_sweep_on_lock_clears_nested_temporaries(qbench_cli, tmp_path):
    ws = Workspace(tmp_path / "runs" / "default")
    stale = ws.root / "reports" / "figures" / f".latency.svg.{_dead_pid()}.abcd1234.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_text("<svg")
    p = qbench_cli("quantize", "--mode", "fp32")  # locks, sweeps, then stops: no baseline
    assert p.returncode == 2 and "no baseline" in p.stderr
    assert not stale.exists() and (ws.root / LOCK_NAME).is_file()


def test_failed_writes_are_one_sentence_naming_the_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(QBenchError, match=f"cannot write rec.json in {blocker}"):
        write_json(blocker / "rec.json", {"x": 1})
    with pytest.raises(QBenchError, match="No space left on device"), atomic_path(tmp_path / "r.json") as tmp:
        tmp.write_text("partial")
        raise OSError(28, "No space left on device")
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]  # the temporary file went too
