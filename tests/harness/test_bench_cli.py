"""``qbench bench`` end to end in a subprocess on the tiny trained workspace."""

from __future__ import annotations

from qbench.records import BenchResult


def test_bench_cli_writes_a_readable_fp32_record(tiny_workspace, qbench_cli):
    runs = str(tiny_workspace.root.parent)
    proc = qbench_cli("bench", "--runs-dir", runs, "--iters", "6", "--batch-sizes", "1,4", "--threads", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = BenchResult.from_json(tiny_workspace.result_path("fp32"))
    assert result.status == "ok" and result.runner == "torch"
    assert [s.batch_size for s in result.latency] == [1, 4]
    assert all(s.n_samples == 6 and len(s.samples_ms) == 6 for s in result.latency)
    assert result.accuracy.top1 > 50 and result.accuracy.agreement.top1_agreement == 100.0
    assert result.runner_info["threads"] == 1 and result.env.torch_threads == 1
    assert result.model.flops > 0 and result.efficiency.unit == result.variant.ops_unit == "GFLOP/s"
    assert result.settings.options.iters == 6 and result.settings.isolation.startswith("fresh process")
    assert all(s.median_ci_low_ms <= s.median_ms <= s.median_ci_high_ms for s in result.latency)
    assert result.size_bytes == tiny_workspace.model_path.stat().st_size
    assert result.memory.rss_peak_mb >= result.memory.rss_before_load_mb
    assert (tiny_workspace.results_dir / "logits" / "fp32.npy").is_file()
    assert "fp32" in proc.stdout  # the summary table


def test_bench_cli_errors_are_one_sentence(tiny_workspace, qbench_cli):
    runs = str(tiny_workspace.root.parent)
    proc = qbench_cli("bench", "--runs-dir", runs, "--variants", "int8-nope")
    assert proc.returncode == 2
    assert "no variant 'int8-nope'" in proc.stderr and "available: fp32" in proc.stderr
    assert "Traceback" not in proc.stderr
    import torch

    if not torch.cuda.is_available():
        proc = qbench_cli("bench", "--runs-dir", runs, "--device", "cuda")
        assert proc.returncode == 2 and "no CUDA device" in proc.stderr
