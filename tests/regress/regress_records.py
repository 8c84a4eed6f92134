"""Records for the regress tests: the real tiny-cnn record with its timing replaced per case.

Each case's timing is R process runs: fixed-seed log-normal samples per run around a run
median, each run summarised by the harness's own ``stats.latency_stats`` and the runs folded by
``stats.merge_repeats``, exactly as ``qbench bench --repeats R`` folds them. Everything else
in the record (model, variant, environment, accuracy, settings) is what ``qbench bench`` wrote.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from qbench.harness.stats import latency_stats, merge_repeats
from qbench.records import BenchResult, GpuInfo
from qbench.regress import ResultSet
from qbench.workspace import Workspace


def run_stats(batch_size: int, run_medians: list[float], seed: int, spread: float = 0.02, n: int = 30):
    """LatencyStats of len(run_medians) process runs, merged as 'bench --repeats' merges them."""
    rng = np.random.default_rng(seed)
    runs = []
    for median in run_medians:
        s = list(median * np.exp(rng.normal(0.0, spread, n)))
        runs.append(latency_stats(s, batch_size, total_s=sum(s) / 1000.0, warmup_iters=2))
    return merge_repeats(runs)


def transform(
    result: BenchResult,
    mode: str = "fp32",
    *,
    runs: list[float] | tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0),
    scale: float = 1.0,
    seed: int = 0,
    top1: float | None = None,
    cpu: str | None = None,
    gpu: str | None = None,
    accuracy: bool = True,
) -> BenchResult:
    """The real record as ``mode``; run r's median is 2 ms x batch x scale x runs[r]."""
    latency = [
        run_stats(s.batch_size, [2.0 * s.batch_size * scale * f for f in runs], seed * 100 + i)
        for i, s in enumerate(result.latency)
    ]
    result = dataclasses.replace(result, mode=mode, latency=latency)
    result.settings = dataclasses.replace(result.settings, repeats_done=len(runs))
    if result.variant is not None:
        result.variant = dataclasses.replace(result.variant, mode=mode)
    if not accuracy:
        result.accuracy = None
    elif top1 is not None:
        result.accuracy = dataclasses.replace(result.accuracy, top1=top1)
    env = result.env
    if cpu is not None:
        env = dataclasses.replace(env, cpu=dataclasses.replace(env.cpu, model=cpu))
    if gpu is not None:
        env = dataclasses.replace(env, gpus=[GpuInfo(index=0, name=gpu, memory_gb=80.0, capability="9.0")])
        result.device = "cuda"
    result.env = env
    return result


def not_run(result: BenchResult, mode: str, status: str = "skipped", reason: str = "no CUDA device"):
    """The record of a variant that did not run here, as bench_variant writes it."""
    return dataclasses.replace(
        result, mode=mode, status=status, skip_reason=reason, latency=[], env=None, accuracy=None
    )


def write_results(root: Path, *results: BenchResult) -> Path:
    """A workspace folder holding results/<mode>.json, as 'qbench bench' leaves it."""
    ws = Workspace(root)
    for r in results:
        r.save_json(ws.result_path(r.mode))
    return root


def side(*results: BenchResult) -> ResultSet:
    return ResultSet("test", {r.mode: r for r in results})


def verdicts(report) -> dict[tuple[str, int | None], str]:
    return {(r.variant, r.batch_size): r.verdict for r in report.rows}
