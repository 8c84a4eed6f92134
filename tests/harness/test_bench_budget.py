"""The per-batch time budget of 'qbench run' and the emulated-precision flag."""

from __future__ import annotations

import time

import pytest

from qbench import capabilities
from qbench.errors import QBenchError
from qbench.harness import stats
from qbench.harness.timing import BUDGET_MIN_ITERS, time_call
from qbench.records import BenchOptions


def _sleep() -> None:
    time.sleep(0.01)


def test_time_budget_cuts_the_loop_and_says_so():
    run = time_call(_sleep, warmup=10, iters=100, max_seconds=0.15)
    assert run.stopped_by == "time-budget"
    assert BUDGET_MIN_ITERS <= len(run.samples_ms) < 100
    assert 1 <= run.warmup_iters < 10  # warm-up is cut to a share of the budget, one call at least
    lat = stats.from_run(run, 1)
    assert lat.stopped_by == "time-budget" and lat.n_samples == len(run.samples_ms)


def test_budget_keeps_the_minimum_number_of_samples():
    run = time_call(_sleep, warmup=0, iters=100, max_seconds=0.001)
    assert run.stopped_by == "time-budget" and len(run.samples_ms) == BUDGET_MIN_ITERS


@pytest.mark.parametrize(
    ("kwargs", "rule", "count"),
    [
        ({"iters": 5}, "iterations", 5),
        ({"iters": 5, "max_seconds": 10.0}, "iterations", 5),  # a budget never adds iterations
        ({"iters": 5, "max_iters": 5, "min_seconds": 10.0}, "max-iters", 5),
    ],
)
def test_stop_rule_is_recorded(kwargs, rule, count):
    run = time_call(lambda: None, warmup=0, **kwargs)
    assert (run.stopped_by, len(run.samples_ms)) == (rule, count)


def test_min_seconds_rule_is_recorded():
    run = time_call(_sleep, warmup=0, iters=2, min_seconds=0.05)
    assert run.stopped_by == "min-seconds" and len(run.samples_ms) > 2


def test_budget_must_exceed_min_seconds():
    with pytest.raises(QBenchError, match="--max-seconds-per-batch"):
        BenchOptions(min_seconds=2.0, max_seconds_per_batch=1.0)
    assert BenchOptions().max_seconds_per_batch is None  # qbench bench: 10 + 100 stay the default


X86_PLAIN = frozenset({"avx2", "avx512f"})


@pytest.mark.parametrize(
    ("precision", "flags", "family", "device", "emulated"),
    [
        ("fp16", X86_PLAIN, "x86", "cpu", True),
        ("fp16", X86_PLAIN | {"avx512_fp16"}, "x86", "cpu", False),
        ("fp16", X86_PLAIN | {"amx_fp16"}, "x86", "cpu", False),
        ("bf16", X86_PLAIN | {"avx512_fp16"}, "x86", "cpu", True),
        ("bf16", X86_PLAIN | {"amx_bf16"}, "x86", "cpu", False),
        ("fp16 (inputs and outputs fp32, cast at the graph edges)", X86_PLAIN, "x86", "cpu", True),
        ("fp16", X86_PLAIN, "x86", "cuda", False),  # a GPU question, not the CPU's
        ("fp32", X86_PLAIN, "x86", "cpu", False),
        (None, X86_PLAIN, "x86", "cpu", False),
        ("fp16", frozenset({"fp", "asimd"}), "arm", "cpu", True),
        ("fp16", frozenset({"fp", "asimd", "asimdhp"}), "arm", "cpu", False),
        ("fp16", frozenset(), "riscv", "cpu", False),  # unknown family: never claimed
    ],
)
def test_emulated_precision(precision, flags, family, device, emulated):
    reason = capabilities.emulated(precision, device, flags=flags, family=family)
    assert (reason is not None) == emulated
    if reason:
        assert reason.startswith("emulated: ") and precision.split()[0] in reason
