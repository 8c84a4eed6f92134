"""A GPU run's extra columns in the reports: GPU compute time beside host latency, and what the
device did per batch size. The record is a real CPU run's, given the host samples and telemetry a
CUDA bench adds (no GPU here), so the readers are checked against the writers' types."""

from __future__ import annotations

import dataclasses

from bs4 import BeautifulSoup

from qbench.harness import stats
from qbench.records import BenchResult, GpuTelemetry


def _as_gpu_run(path) -> BenchResult:
    result = BenchResult.from_json(path)
    for lat in result.latency:
        lat.host = stats.host_latency([s + 0.25 for s in lat.samples_ms])  # 0.25 ms of launch and wait
        lat.sync = "cuda-event"
        lat.gpu = GpuTelemetry(
            peak_allocated_mb=10.0 * lat.batch_size,
            device_used_delta_mb=12.5 * lat.batch_size,
            nvml_process_mb=None,
            sm_clock_mhz=1980.0,
            mem_clock_mhz=2619.0,
            power_w=123.4,
            power_limit_w=700.0,
            temperature_c=41.0,
            samples=25,
        )
    gpu = dataclasses.replace(result, device="cuda")
    gpu.save_json(path)
    return gpu


def test_gpu_compute_and_host_latency_in_every_report(real_ws, qbench_cli):
    fp32 = _as_gpu_run(real_ws / "results" / "fp32.json")
    proc = qbench_cli("compare", "--report", "text,html,md", "--runs-dir", str(real_ws.parent))
    assert proc.returncode == 0, proc.stderr[-2000:]
    reports = real_ws / "reports"
    first = fp32.latency[0]
    gpu_ms, host_ms = f"{first.median_ms:.2f}", f"{first.host.median_ms:.2f}"

    text = (reports / "fp32.txt").read_text()
    assert "GPU Compute Time vs Host Latency" in text
    line = next(ln for ln in text.splitlines() if ln.startswith(f"{first.batch_size} ") and host_ms in ln)
    assert line.split()[:3] == [str(first.batch_size), gpu_ms, host_ms]
    assert "SM 1,980 / mem 2,619 MHz; power 123.4 W of 700 W" in text
    assert "n/a (not read)" in text  # the NVML figure this record lacks, said so
    # a CPU variant's report has no GPU section
    assert "GPU Compute Time" not in (reports / "onnx.txt").read_text()

    soup = BeautifulSoup((reports / "report.html").read_text(), "html.parser")
    row = soup.select_one(f'#gpu-table tr[data-variant$="/fp32"][data-batch="{first.batch_size}"]')
    cells = [td.get_text() for td in row.select("td")]
    assert cells[2:4] == [gpu_ms, host_ms] and cells[5] == "0.25"
    assert not soup.select('#gpu-table tr[data-variant$="/onnx"]')

    md = (reports / "report.md").read_text()
    assert "GPU compute time and host latency" in md and f"| {gpu_ms} | {host_ms} |" in md
