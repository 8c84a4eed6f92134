"""Timing one call: cold call, warm-up, then timed iterations under a stop rule.

The stop rule is "at least ``iters`` iterations and at least ``min_seconds`` of timed wall
time", so a fast call can be given enough wall time to average out scheduler noise and a
slow one still gets its ``iters`` samples. ``max_iters`` caps the sample list so a tiny call
under a long ``min_seconds`` cannot produce a record of millions of samples.

CPU: each sample is ``time.perf_counter`` around ``fn(); sync()``; the call has returned
when the work is done. CUDA: each sample is the time between two CUDA events recorded on
the current stream around ``fn()``, followed by one ``sync()`` (a synchronize) per
iteration, so samples are GPU time and iterations never overlap; runners must enqueue on
the current torch stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_ITERS = 100_000


@dataclass
class TimingRun:
    samples_ms: list[float]
    cold_ms: float
    warmup_iters: int  # warm-up calls actually made (count rule plus any time rule)
    total_s: float  # wall time of the timed loop, sync included
    sync: str  # "none" | "cuda-event"
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
) -> TimingRun:
    if iters < 1:
        raise ValueError("iters must be 1 or more")
    sync = sync or _noop
    clock = time.perf_counter

    start = clock()
    fn()
    sync()
    cold_ms = (clock() - start) * 1e3

    done = 0
    warm_start = clock()
    while done < warmup or clock() - warm_start < warmup_s:
        fn()
        sync()
        done += 1

    if cuda:
        samples, total_s = _timed_cuda(fn, sync, iters, min_seconds, max(iters, max_iters))
    else:
        samples, total_s = _timed_cpu(fn, sync, iters, min_seconds, max(iters, max_iters))
    return TimingRun(
        samples_ms=samples,
        cold_ms=cold_ms,
        warmup_iters=done,
        total_s=total_s,
        sync="cuda-event" if cuda else "none",
    )


def _timed_cpu(fn, sync, iters: int, min_seconds: float, cap: int) -> tuple[list[float], float]:
    clock = time.perf_counter
    samples: list[float] = []
    loop_start = clock()
    while len(samples) < cap:
        t0 = clock()
        fn()
        sync()
        t1 = clock()
        samples.append((t1 - t0) * 1e3)
        if len(samples) >= iters and t1 - loop_start >= min_seconds:
            break
    return samples, clock() - loop_start


def _timed_cuda(fn, sync, iters: int, min_seconds: float, cap: int) -> tuple[list[float], float]:
    import torch

    clock = time.perf_counter
    begin = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    samples: list[float] = []
    loop_start = clock()
    while len(samples) < cap:
        begin.record()
        fn()
        end.record()
        sync()
        end.synchronize()  # a no-op after a device sync; guards runners whose sync() is lazier
        samples.append(begin.elapsed_time(end))
        if len(samples) >= iters and clock() - loop_start >= min_seconds:
            break
    return samples, clock() - loop_start
