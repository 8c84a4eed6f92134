"""Fresh-process isolation: one variant's allocations do not reach the next one's numbers,
a variant that dies takes only its own record down, and a bench that is killed takes its fork
server and the variant it measures down with it."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from qbench.harness import forkserver
from qbench.harness.isolation import NOT_ISOLATED, bench_modes
from qbench.harness.worker import FORKED_PROCESS, FRESH_PROCESS
from qbench.records import BaselineRef, BenchOptions, BenchResult, VariantRecord

HERE = Path(__file__).resolve().parent
BALLAST_MB = 300
# a bench whose one variant warms up for five minutes: it is killed long before
BENCH_UNTIL_KILLED = """
import sys
from pathlib import Path

from qbench.harness.isolation import bench_modes
from qbench.records import BenchOptions
from qbench.workspace import Workspace

options = BenchOptions(batch_sizes=[1], warmup_s=300, iters=3, threads=1, accuracy=False)
bench_modes(Workspace(Path(sys.argv[1])), ["light"], options)
"""


def _variant(ws, mode: str, requires: tuple[str, ...] = (), **details) -> None:
    """A variant of the ballast runner, written as exporters write theirs (a VariantRecord)."""
    vdir = ws.variant_dir(mode)
    vdir.mkdir(parents=True, exist_ok=True)
    (vdir / "weights.bin").write_bytes(b"\0" * 1000)
    VariantRecord(
        mode=mode,
        status="ok",
        runner="ballast",
        description="a test runner that leaks a ballast buffer",
        baseline=BaselineRef(model="tiny-cnn", num_classes=10, input_size=32),
        requires=list(requires),
        artifact="weights.bin",
        details=details,
    ).save_json(ws.variant_json(mode))


@pytest.fixture
def ballast_workspace(tiny_workspace, monkeypatch):
    monkeypatch.setenv("QBENCH_PLUGINS", "ballast_plugin")
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    import ballast_plugin  # noqa: F401  (registers the runner in this process too)

    _variant(tiny_workspace, "heavy", ballast_mb=BALLAST_MB)
    _variant(tiny_workspace, "light")
    return tiny_workspace


def _options(isolate: bool) -> BenchOptions:
    return BenchOptions(batch_sizes=[1], warmup=1, iters=3, threads=1, accuracy=False, isolate=isolate)


@pytest.mark.skipif(not forkserver.available(), reason="no os.fork here")
def test_fork_server_child_does_not_inherit_another_variants_allocations(ballast_workspace):
    """heavy leaks its ballast in a child of the fork server; light, forked next from the same
    server, starts without it (and light first, heavy second, shows the same baseline)."""
    ws = ballast_workspace
    heavy, light = bench_modes(ws, ["heavy", "light"], _options(isolate=True))
    assert heavy.status == light.status == "ok"
    assert heavy.memory.rss_after_load_mb - heavy.memory.rss_before_load_mb > BALLAST_MB * 0.9
    # the next variant starts from a clean process: the leaked ballast is not in its numbers
    assert light.memory.rss_before_load_mb < heavy.memory.rss_after_load_mb - BALLAST_MB * 0.9
    assert abs(light.memory.rss_before_load_mb - heavy.memory.rss_before_load_mb) < BALLAST_MB * 0.1
    assert light.settings.isolation == heavy.settings.isolation == FORKED_PROCESS
    assert light.model.name == "tiny-cnn" and light.efficiency.unit == "GFLOP/s"
    assert light.env.torch_threads == 1 and light.variant.details == {}
    assert BenchResult.from_json(ws.result_path("light")).memory == light.memory

    # the same run in one process shows the pollution isolation prevents
    heavy_in, light_in = bench_modes(ws, ["heavy", "light"], _options(isolate=False))
    assert light_in.memory.rss_before_load_mb > heavy_in.memory.rss_before_load_mb + BALLAST_MB * 0.9
    assert light_in.settings.isolation == NOT_ISOLATED


def test_without_fork_each_variant_gets_a_new_interpreter(ballast_workspace, monkeypatch):
    monkeypatch.setattr(forkserver, "available", lambda: False)
    (light,) = bench_modes(ballast_workspace, ["light"], _options(isolate=True))
    assert light.status == "ok" and light.settings.isolation == FRESH_PROCESS


def test_repeats_are_interleaved_and_merged(ballast_workspace):
    """Six runs (in this process, for speed): the median's confidence interval comes from the run medians."""
    ws = ballast_workspace
    options = BenchOptions(
        batch_sizes=[1], warmup=1, iters=3, threads=1, accuracy=False, repeats=6, isolate=False
    )
    (light,) = bench_modes(ws, ["light"], options)
    (stats,) = light.latency
    assert light.settings.repeats_done == 6 and len(stats.repeats) == 6 and stats.n_samples == 18
    assert (stats.median_ci_low_ms, stats.median_ci_high_ms) == (min(stats.repeats), max(stats.repeats))
    assert "from the 6 per-repeat medians" in light.settings.statistics["median_ci"]
    assert BenchResult.from_json(ws.result_path("light")) == light


def test_crashing_variant_is_recorded_as_failed(ballast_workspace):
    ws = ballast_workspace
    _variant(ws, "dies", die=True)
    dies, light = bench_modes(ws, ["dies", "light"], _options(isolate=True))
    assert dies.status == "failed"
    assert "simulated hard crash" in "\n".join(dies.notes)
    assert "status 7" in dies.skip_reason
    assert light.status == "ok"
    assert BenchResult.from_json(ws.result_path("dies")).status == "failed"


def test_skipped_variant_keeps_its_reason(ballast_workspace):
    ws = ballast_workspace
    _variant(ws, "needs-gpu", requires=("cuda",))
    VariantRecord(
        mode="gone",
        status="skipped",
        runner="tensorrt",
        description="a variant its exporter could not build here",
        baseline=BaselineRef(model="tiny-cnn", num_classes=10, input_size=32),
        skip_reason="no CUDA device",
    ).save_json(ws.variant_json("gone"))
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the requirement is met")
    needs, gone = bench_modes(ws, ["needs-gpu", "gone"], _options(isolate=False))
    assert (needs.status, needs.skip_reason) == ("skipped", "no CUDA device")
    assert (gone.status, gone.skip_reason) == ("skipped", "no CUDA device")


def _forked_family(bench: psutil.Process, timeout: float = 60) -> tuple[psutil.Process, psutil.Process]:
    """The bench's fork server and the child it forked, once the child exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for server in bench.children():
            with contextlib.suppress(psutil.NoSuchProcess):
                forked = server.children()
                if forked and "qbench.harness.forkserver" in server.cmdline():
                    return server, forked[0]
        time.sleep(0.05)
    raise AssertionError(f"the bench forked no child in {timeout} s")


def _gone(process: psutil.Process) -> bool:
    """Exited (a zombie counts: it holds no files, no lock and no core)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _all_gone_within(seconds: float, processes: list[psutil.Process]) -> bool:
    deadline = time.monotonic() + seconds
    while not all(map(_gone, processes)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return all(map(_gone, processes))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_killed_bench_takes_its_fork_server_and_child_with_it(ballast_workspace):
    """SIGKILL leaves the bench no time to close its server: the kernel kills the server, then
    its child, which was measuring (the repro: they went on for a minute, holding the lock)."""
    bench = subprocess.Popen([sys.executable, "-c", BENCH_UNTIL_KILLED, str(ballast_workspace.root)])
    family = [psutil.Process(bench.pid)]
    try:
        family += _forked_family(family[0])
        time.sleep(0.5)  # into the child's warm-up
        assert not _gone(family[-1])
        bench.kill()
        assert _all_gone_within(5, family[1:])
    finally:  # after a failure too, nothing the test started spins on
        for process in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        bench.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_process_whose_parent_died_before_it_asked_dies_at_once():
    """The race the getppid check closes: the expected parent is not the parent any more (here:
    its own pid), so the process dies instead of going on unwatched."""
    script = textwrap.dedent("""
        import os
        from qbench.harness.forkserver import die_with_parent

        print(die_with_parent(os.getppid()), flush=True)
        die_with_parent(os.getpid())
        print("still here")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (-signal.SIGKILL, "True\n")


@pytest.mark.skipif(not forkserver.available(), reason="no os.fork here")
def test_without_prctl_the_server_kills_its_child_when_the_bench_is_gone():
    """The fallback where the kernel does not watch the bench: the server's wait on a child looks
    for its parent itself (a parent given as a pid that is not it stands for a dead bench)."""
    script = textwrap.dedent("""
        import os, time
        from qbench.harness.forkserver import _wait

        def fork(seconds):
            pid = os.fork()
            if pid == 0:
                time.sleep(seconds)
                os._exit(3)
            return pid

        print(os.waitstatus_to_exitcode(_wait(fork(0.1), os.getppid(), watched=False)))
        start = time.monotonic()
        print(_wait(fork(60), os.getpid(), watched=False), time.monotonic() - start < 5)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.stdout.split() == ["3", "None", "True"], done.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_killed_bench_takes_its_fresh_worker_process_with_it(ballast_workspace):
    """Without the fork server (a GPU bench, or no fork) each variant runs in a fresh worker
    process: it too dies with the bench."""
    script = (
        "from qbench.harness import forkserver\nforkserver.available = lambda: False\n" + BENCH_UNTIL_KILLED
    )
    bench = subprocess.Popen([sys.executable, "-c", script, str(ballast_workspace.root)])
    family = [psutil.Process(bench.pid)]
    try:
        deadline = time.monotonic() + 60
        while len(family) == 1 and time.monotonic() < deadline:
            family += [p for p in family[0].children() if "qbench.harness.worker" in " ".join(p.cmdline())]
            time.sleep(0.05)
        assert len(family) == 2, "the bench started no worker"
        time.sleep(3)  # into the worker's imports or warm-up
        assert not _gone(family[-1])
        bench.kill()
        assert _all_gone_within(5, family[1:])
    finally:
        for process in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        bench.wait()
