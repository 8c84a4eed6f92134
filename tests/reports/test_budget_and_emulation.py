"""The reports and the CLI table show how many iterations each batch size took and why, and
which variants ran on emulated arithmetic: from records a real budgeted bench wrote."""

from __future__ import annotations

import dataclasses

from bs4 import BeautifulSoup

from qbench.records import BenchResult


def test_budget_and_emulation_are_shown(real_ws, qbench_cli):
    runs = str(real_ws.parent)
    proc = qbench_cli(
        "bench", "--variants", "fp32,fp16", "--batch-sizes", "1,4", "--warmup", "2",
        "--max-seconds-per-batch", "0.001", "--runs-dir", runs,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    fp32 = BenchResult.from_json(real_ws / "results" / "fp32.json")
    for s in fp32.latency:
        assert (s.stopped_by, s.n_samples, s.iters_requested, s.time_budget_s) == (
            "time-budget",
            10,
            100,
            0.001,
        )
    assert "10*" in proc.stdout and "0.001 s budget at batch 1,4" in proc.stdout

    # the emulated flag as this machine would set it elsewhere (it depends on the CPU's flags)
    path = real_ws / "results" / "fp16.json"
    fp16 = BenchResult.from_json(path)
    if fp16.ok and fp16.emulated is None:
        reason = "emulated: this CPU has no avx512_fp16 or amx_fp16, so fp16 arithmetic runs through conversions to fp32"
        dataclasses.replace(fp16, emulated=reason).save_json(path)
    proc = qbench_cli("compare", "--report", "text,html", "--runs-dir", runs)
    assert proc.returncode == 0, proc.stderr[-2000:]
    reports = real_ws / "reports"
    text = (reports / "fp32.txt").read_text()
    assert "Iterations" in text and "10 of 100 (0.001 s budget), warm-up 1 of 2" in text
    assert "! the time budget of 0.001 s per batch size stopped the timed loop" in text
    assert "before 100 iterations at batch 1, 4" in text
    soup = BeautifulSoup((reports / "report.html").read_text(), "html.parser")
    row = soup.select_one('#latency-table tr[data-variant$="/fp32"][data-batch="1"]')
    assert "10 of 100 (0.001 s budget)" in row.get_text()
    assert "budget" in [b.get_text() for b in row.select(".badge")]
    if BenchResult.from_json(path).ok:
        assert "Arithmetic: emulated: " in (reports / "fp16.txt").read_text()
        summary = soup.select_one('#summary-table tr[data-variant$="/fp16"]')
        assert "emulated" in summary.get_text()
