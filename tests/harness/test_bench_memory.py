"""The peak-RSS watcher sees a short allocation that before/after readings miss."""

from __future__ import annotations

import time

import numpy as np

from qbench.harness.memory import MB, PeakWatcher, gpu_memory, rss_bytes

SPIKE_MB = 200


def _spike() -> None:
    buf = np.ones(SPIKE_MB * MB // 8)  # written, so the pages are resident
    time.sleep(0.02)
    del buf


def test_watcher_thread_catches_a_short_spike():
    before = rss_bytes()
    with PeakWatcher(interval_s=0.001, use_hwm=False) as watcher:
        time.sleep(0.005)
        _spike()
        time.sleep(0.005)
    after = rss_bytes()
    assert (after - before) / MB < SPIKE_MB / 2  # before/after readings miss the spike
    assert (watcher.peak - before) / MB > SPIKE_MB * 0.9
    assert watcher.samples > 5 and watcher.achieved_interval_ms is not None


def test_kernel_high_water_mark_is_reset_per_section():
    _spike()  # an earlier peak must not count in the next section
    with PeakWatcher(use_hwm=True) as watcher:
        time.sleep(0.01)
    if watcher.hwm_used:
        assert (watcher.peak - rss_bytes()) / MB < SPIKE_MB / 2


def test_gpu_memory_says_why_it_is_absent_on_cpu():
    values, notes = gpu_memory("cpu")
    assert values["gpu_peak_allocated_mb"] is None and notes == ["GPU memory: n/a (CPU run)"]
