"""Fresh-process isolation: one variant's allocations do not reach the next one's numbers,
and a variant that dies takes only its own record down."""

from __future__ import annotations

from pathlib import Path

import pytest

from qbench.harness import forkserver
from qbench.harness.isolation import NOT_ISOLATED, bench_modes
from qbench.harness.worker import FORKED_PROCESS, FRESH_PROCESS
from qbench.records import BaselineRef, BenchOptions, BenchResult, VariantRecord

HERE = Path(__file__).resolve().parent
BALLAST_MB = 300


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
