"""Machine limits: a real (quick) measurement, its record, the cache keyed by fingerprint, the CLI."""

from __future__ import annotations

import dataclasses
import json

import pytest

from qbench import env
from qbench.harness import limits
from qbench.records import MachineLimits
from qbench.workspace import CACHE_ENV


@pytest.fixture(scope="module")
def quick_limits() -> MachineLimits:
    return limits.measure(quick=True)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_quick_measurement_records_every_number_with_its_method(quick_limits):
    cpu = quick_limits.cpu
    assert quick_limits.quick and quick_limits.fingerprint == env.capture().fingerprint()
    bw = cpu.bandwidth
    assert bw is not None and bw.gbytes_per_s > 0 and len(bw.passes_gbytes_per_s) == limits.QUICK.passes
    assert bw.buffer_bytes == bw.bytes_per_pass > 0 and "torch.sum" in bw.method and bw.threads >= 1
    assert {p.precision for p in cpu.peaks} >= {"fp32", "bf16", "fp16", "int8"}
    libraries = " ".join(p.library for p in cpu.peaks)
    assert "torch" in libraries and "onnxruntime" in libraries
    for p in cpu.peaks:
        assert (p.rate is not None) != (p.error is not None), p  # a rate, or why there is none
        if p.rate is not None:
            assert p.rate > 0 and p.shape and p.repetitions >= limits.QUICK.min_reps and p.threads >= 1
            assert p.trials and max(p.trials.values()) == pytest.approx(p.rate)
            assert p.unit == ("GOP/s" if p.precision == "int8" else "GFLOP/s")
    assert any("quick measurement" in n for n in cpu.notes)
    assert cpu.peak("int8") is not None and cpu.peak("int8").rate == max(
        p.rate for p in cpu.peaks if p.precision == "int8" and p.rate
    )


def test_the_record_round_trips_through_json(quick_limits, tmp_path):
    path = quick_limits.save_json(tmp_path / "limits.json")
    again = MachineLimits.from_json(path)
    assert again.to_dict() == quick_limits.to_dict()
    assert again.for_device("cpu") is again.cpu and again.for_device("cuda:0") is None


def test_the_cache_is_keyed_by_machine_fingerprint(cache, quick_limits):
    machine = env.capture()
    record = dataclasses.replace(quick_limits, fingerprint=machine.fingerprint())
    record.save_json(limits.cache_path(machine.fingerprint()))
    found, measured_now = limits.obtain(machine)
    assert not measured_now and found.to_dict() == record.to_dict()
    assert limits.cache_path(machine.fingerprint()).parent == cache / "limits"
    # another thread count is another machine fingerprint: nothing cached for it
    other = dataclasses.replace(machine, torch_threads=(machine.torch_threads or 1) + 1)
    assert other.fingerprint() != machine.fingerprint()
    assert limits.load_cached(other.fingerprint()) is None


def test_missing_or_corrupt_cache_is_measured_and_remeasure_measures_again(cache, monkeypatch):
    monkeypatch.setattr(limits, "BUSY_CORES", float("inf"))  # kept for good, whatever else runs
    machine = env.capture()
    path = limits.cache_path(machine.fingerprint())
    path.parent.mkdir(parents=True)
    path.write_text("{ not json")
    assert limits.load_cached(machine.fingerprint()) is None
    first, measured_now = limits.obtain(machine, quick=True)
    assert measured_now and MachineLimits.from_json(path).measured == first.measured
    again, measured_now = limits.obtain(machine, quick=True)
    assert not measured_now and again.seconds == first.seconds
    _, measured_now = limits.obtain(machine, quick=True, remeasure=True)
    assert measured_now


def test_bandwidth_buffer_stays_above_the_cache_within_memory():
    plan = limits.FULL
    size, note = limits.bandwidth_buffer_bytes(plan, 504 * 2**20, 20 * 2**30)
    assert size == 1008 * 2**20 and note is None  # twice the last-level cache
    size, note = limits.bandwidth_buffer_bytes(plan, 8 * 2**20, 20 * 2**30)
    assert size == plan.min_buffer_bytes and note is None  # a small cache: the floor
    size, note = limits.bandwidth_buffer_bytes(plan, 2 * 2**30, 2 * 2**30)
    assert size == 2**29 and "served from the cache" in note  # a quarter of the memory available
    size, _ = limits.bandwidth_buffer_bytes(plan, None, 20 * 2**30)
    assert size == plan.min_buffer_bytes


def test_cache_size_from_a_sysfs_tree(tmp_path):
    for i, (kind, size) in enumerate(
        [("Data", "48K"), ("Instruction", "64K"), ("Unified", "2048K"), ("Unified", "32M")]
    ):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "type").write_text(kind + "\n")
        (d / "size").write_text(size + "\n")
    assert limits._sysfs_cache_bytes(tmp_path) == 32 * 2**20
    assert limits._sysfs_cache_bytes(tmp_path / "none") is None


def test_info_limits_prints_the_cached_limits_with_their_method(cache, quick_limits, qbench_cli):
    machine = dataclasses.replace(env.capture(), torch_threads=1)  # the CLI measures with --threads 1
    record = dataclasses.replace(quick_limits, fingerprint=machine.fingerprint())
    record.save_json(limits.cache_path(machine.fingerprint()))
    p = qbench_cli("info", "--limits", "--threads", "1")
    assert p.returncode == 0, p.stderr
    assert machine.fingerprint() in p.stdout and "cached, measured" in p.stdout
    assert "memory bandwidth" in p.stdout and "GB/s" in p.stdout and "torch.sum" in p.stdout
    for precision in ("fp32", "bf16", "fp16", "int8"):
        assert f"{precision} matmul peak" in p.stdout
    assert "ONNX MatMulInteger" in p.stdout and "quick measurement" in p.stdout
    p = qbench_cli("info", "--limits", "--threads", "1", "--json")
    assert p.returncode == 0, p.stderr
    assert MachineLimits.from_dict(json.loads(p.stdout)).fingerprint == machine.fingerprint()


def test_info_limits_refuses_a_bad_thread_count(qbench_cli):
    p = qbench_cli("info", "--limits", "--threads", "0")
    assert p.returncode == 2 and "--threads must be 1 or more" in p.stderr
    assert "Traceback" not in p.stderr


def test_limits_measured_on_a_busy_machine_say_so_and_are_kept_briefly(cache, monkeypatch):
    """Two busy loops in other processes take about a core from a 2-core measurement: the record
    says how much and the CPU limits carry the note; the cache serves it for BUSY_KEEP_S (the
    other variants of the same bench), then a bench measures again."""
    import subprocess
    import sys
    import time

    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(0.5)
        found, measured_now = limits.obtain(env.capture(), quick=True)
    finally:
        for p in burners:
            p.kill()
            p.wait()
    assert measured_now and found.other_load_cores >= limits.BUSY_CORES
    assert any("kept 10 minutes only" in note for note in found.cpu.notes)
    assert limits.load_cached(found.fingerprint).to_dict() == found.to_dict()
    monkeypatch.setattr(limits, "BUSY_KEEP_S", -1.0)  # older than it may be
    assert limits.load_cached(found.fingerprint) is None
