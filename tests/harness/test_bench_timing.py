"""The timing loop: stop rule, warm-up, noise flag, and agreement with torch.utils.benchmark."""

from __future__ import annotations

import random
import statistics
import time

import pytest
import torch

from qbench.harness import stats
from qbench.harness.timing import time_call


def test_stop_rule_iterations_only():
    calls = []
    run = time_call(lambda: calls.append(1), warmup=3, iters=25)
    assert len(run.samples_ms) == 25
    assert run.warmup_iters == 3
    assert len(calls) == 1 + 3 + 25  # cold call, warm-up, timed
    assert run.sync == "none"


def test_stop_rule_needs_both_iterations_and_seconds():
    run = time_call(lambda: time.sleep(0.001), warmup=0, iters=5, min_seconds=0.1)
    assert len(run.samples_ms) > 5  # seconds were the binding limit
    assert run.total_s >= 0.1
    run = time_call(lambda: None, warmup=0, iters=500, min_seconds=0.0)
    assert len(run.samples_ms) == 500  # iterations were


def test_warmup_by_time_and_cold_call_apart():
    state = {"first": True}

    def fn():
        if state.pop("first", False):
            time.sleep(0.03)

    run = time_call(fn, warmup=1, warmup_s=0.05, iters=10)
    assert run.cold_ms >= 25
    assert run.warmup_iters > 1
    assert max(run.samples_ms) < 25  # the cold call is not a sample


def test_sync_is_inside_the_timed_region():
    run = time_call(lambda: None, lambda: time.sleep(0.002), warmup=0, iters=5)
    assert min(run.samples_ms) >= 1.5


def test_jittered_function_is_flagged_noisy():
    rng = random.Random(0)
    run = time_call(lambda: time.sleep(rng.choice([0.0005, 0.004])), warmup=0, iters=30)
    assert stats.from_run(run, 1, cv_threshold=0.1).noisy


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared 2-core machine: one thread keeps both timers comparable
    yield
    torch.set_num_threads(before)


def test_median_agrees_with_torch_benchmark_timer(one_thread):
    from torch.utils.benchmark import Timer

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=1),
        torch.nn.ReLU(),
    ).eval()
    x = torch.randn(16, 3, 32, 32)

    def call():
        with torch.inference_mode():
            net(x)

    # Timer's samples are means of blocks of number_per_run calls; ours are single calls. When
    # other processes compete for the 2 cores, a block soaks up every preemption inside it
    # while the per-call median skips preempted calls, so the fair comparison re-blocks our
    # samples the same way; the per-call median itself must never be slower (no overhead).
    # On a quiet machine the two medians agree within a few percent (see the bench report).
    # Each of Timer's blocks is followed by one block of ours (its callback), so bursts of
    # load from elsewhere fall on both alike.
    ours: list[float] = []
    block_means: list[float] = []

    def after_block(number: int, _seconds: float) -> None:
        samples = time_call(call, warmup=0, iters=number).samples_ms
        ours.extend(samples)
        block_means.append(statistics.fmean(samples))

    time_call(call, warmup=5, iters=1)
    m = Timer("call()", globals={"call": call}).blocked_autorange(callback=after_block, min_run_time=1.0)
    # means over all blocks: under load Timer may pick blocks of 100 calls, and a median of
    # three blocks is at the mercy of one burst
    assert statistics.fmean(block_means) == pytest.approx(m.mean * 1e3, rel=0.10), (block_means, m.times)
    assert statistics.median(ours) < m.median * 1e3 * 1.10
