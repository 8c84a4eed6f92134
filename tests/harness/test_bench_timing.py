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
    """The harness's median per-call latency against torch.utils.benchmark.Timer, same process.

    Timer reports the mean of blocks of calls, ours are single calls: on a shared machine a block
    soaks up every preemption inside it, so the two are compared round by round — one Timer
    block of 5 calls and the mean of 5 timed calls of ours, in alternating order — and the median
    of the per-round ratios must lie within 10% of 1. Means on both sides: a preemption inside a
    round weighs the same on either (our median would drop it and Timer's mean would not, which
    read as a 2x "disagreement" at a load average of 5 on 2 cores). Bursts of load from elsewhere
    fall on a few rounds and leave the median of the ratios alone.
    """
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

    # Timer runs on one thread unless told otherwise; ours on whatever this process has
    timer = Timer("call()", globals={"call": call}, num_threads=torch.get_num_threads())
    time_call(call, warmup=10, iters=1)

    def median_ratio() -> float:
        ratios = []
        for round_ in range(61):
            # alternate who goes first so that neither always runs right after the other
            if round_ % 2:
                ours_ms = statistics.fmean(time_call(call, warmup=0, iters=5).samples_ms)
                theirs_ms = timer.timeit(number=5).mean * 1e3
            else:
                theirs_ms = timer.timeit(number=5).mean * 1e3
                ours_ms = statistics.fmean(time_call(call, warmup=0, iters=5).samples_ms)
            ratios.append(ours_ms / theirs_ms)
        return statistics.median(ratios)

    # A systematic bias (harness overhead, a wrong clock) shows in every attempt; a burst of
    # load from another process on a 2-core machine does not, so up to three attempts are made.
    attempts = []
    for _ in range(3):
        attempts.append(median_ratio())
        if abs(attempts[-1] - 1.0) <= 0.10:
            break
    print(f"median ours/Timer ratio per attempt: {', '.join(f'{r:.3f}' for r in attempts)}")
    assert abs(attempts[-1] - 1.0) <= 0.10, attempts
