"""Timing one call: cold call, warm-up, then timed iterations under a stop rule.

The stop rule is "at least ``iters`` iterations and at least ``min_seconds`` of timed wall
time", so a fast call can be given enough wall time to average out scheduler noise and a
slow one still gets its ``iters`` samples. ``max_iters`` caps the sample list so a tiny call
under a long ``min_seconds`` cannot produce a record of millions of samples.

``max_seconds`` is a time budget for one batch size (trtexec's ``--duration`` idea, used as an
upper bound by ``qbench run``): the timed loop stops once it has run that long and holds at
least ``BUDGET_MIN_ITERS`` samples (enough for the median's 95% interval), and warm-up stops
after ``WARMUP_BUDGET_SHARE`` of it (one warm-up call at least). ``TimingRun.stopped_by`` says
which rule ended the loop, so a record never hides that it holds fewer than ``iters`` samples.

CPU: each sample is ``time.perf_counter`` around ``fn(); sync()``; the call has returned
when the work is done. CUDA (trtexec's split): each sample is the GPU compute time between two
CUDA events recorded on the stream the runner enqueues its work on (``stream``; the runner's
own, see qbench.runners.base), and each call's host latency, ``perf_counter`` from before the
first event to after ``sync()`` (the runner's synchronize) returned, is kept beside it in
``host_samples_ms``. One synchronize per iteration, so iterations never overlap. Events on
another stream than the work's would time the launch only; that is why the stream is passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_ITERS = 100_000
BUDGET_MIN_ITERS = 10
WARMUP_BUDGET_SHARE = 0.25


@dataclass
class TimingRun:
    samples_ms: list[float]
    cold_ms: float
    warmup_iters: int  # warm-up calls actually made (count rule plus any time rule)
    total_s: float  # wall time of the timed loop, sync included
    sync: str  # "none" | "cuda-event"
    stopped_by: str = "iterations"  # a records.result.StopRule
    warmup_s: float = 0.0  # the cold call and the warm-up calls
    # CUDA: the wall-clock latency of each timed call (launch to synchronize), beside the GPU time
    host_samples_ms: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _noop() -> None:
    return None


def time_call(
    fn: Callable[[], Any],
    sync: Callable[[], None] | None = None,
    *,
    warmup: int = 10,
    warmup_s: float = 0.0,
    iters: int = 100,
    min_seconds: float = 0.0,
    cuda: bool = False,
    max_iters: int = DEFAULT_MAX_ITERS,
    max_seconds: float | None = None,
    stream: Any = None,
    event: Callable[[], Any] | None = None,
) -> TimingRun:
    """``stream``: the CUDA stream the events are recorded on (None: the current stream);
    ``event``: the event factory (``torch.cuda.Event(enable_timing=True)``; replaced in tests)."""
    if iters < 1:
        raise ValueError("iters must be 1 or more")
    budget = _Budget(iters, min_seconds, max(iters, max_iters), max_seconds)
    sync = sync or _noop
    clock = time.perf_counter

    start = clock()
    fn()
    sync()
    cold_ms = (clock() - start) * 1e3

    done = 0
    warm_start = clock()
    while (done < warmup or clock() - warm_start < warmup_s) and not budget.warmup_spent(
        done, clock() - warm_start
    ):
        fn()
        sync()
        done += 1

    warmup_s = clock() - start
    host: list[float] | None = None
    if cuda:
        samples, host, total_s = _timed_cuda(fn, sync, budget, stream, event)
    else:
        samples, total_s = _timed_cpu(fn, sync, budget)
    return TimingRun(
        samples_ms=samples,
        host_samples_ms=host,
        cold_ms=cold_ms,
        warmup_iters=done,
        total_s=total_s,
        sync="cuda-event" if cuda else "none",
        stopped_by=budget.stopped_by,
        warmup_s=warmup_s,
    )


@dataclass
class _Budget:
    """The stop rules of the timed loop; ``stop`` also records which one ended it."""

    iters: int
    min_seconds: float
    cap: int
    max_seconds: float | None
    stopped_by: str = "iterations"

    def warmup_spent(self, done: int, elapsed_s: float) -> bool:
        return (
            self.max_seconds is not None and done >= 1 and elapsed_s >= self.max_seconds * WARMUP_BUDGET_SHARE
        )

    def stop(self, n: int, elapsed_s: float) -> bool:
        if n >= self.cap:
            self.stopped_by = "max-iters"
        elif n >= self.iters and elapsed_s >= self.min_seconds:
            self.stopped_by = "min-seconds" if n > self.iters else "iterations"
        elif self.max_seconds is not None and n >= BUDGET_MIN_ITERS and elapsed_s >= self.max_seconds:
            self.stopped_by = "time-budget"
        else:
            return False
        return True


def _timed_cpu(fn, sync, budget: _Budget) -> tuple[list[float], float]:
    clock = time.perf_counter
    samples: list[float] = []
    loop_start = clock()
    while True:
        t0 = clock()
        fn()
        sync()
        t1 = clock()
        samples.append((t1 - t0) * 1e3)
        if budget.stop(len(samples), t1 - loop_start):
            break
    return samples, clock() - loop_start


def _timed_cuda(fn, sync, budget: _Budget, stream, event) -> tuple[list[float], list[float], float]:
    if event is None:
        import torch

        def event():
            return torch.cuda.Event(enable_timing=True)

    clock = time.perf_counter
    begin, end = event(), event()
    samples: list[float] = []
    host: list[float] = []
    loop_start = clock()
    while True:
        t0 = clock()
        begin.record(stream)
        fn()
        end.record(stream)
        sync()
        t1 = clock()
        end.synchronize()  # a no-op after the runner's sync; guards a runner whose sync() is lazier
        samples.append(begin.elapsed_time(end))
        host.append((t1 - t0) * 1e3)
        if budget.stop(len(samples), t1 - loop_start):
            break
    return samples, host, clock() - loop_start
