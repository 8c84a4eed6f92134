"""The roofline section of every report, from a real tiny bench compared with cached (quick) limits.

The bench runs the real CLI with ``QBENCH_CACHE_DIR`` holding a quick limits record under the
fingerprint its workers compute (``--threads 1``), so the test also shows that the bench path
finds the cached limits by machine fingerprint instead of measuring them again.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import markupsafe
import pytest

from qbench import env
from qbench.harness import limits
from qbench.records import BenchResult, EnergyPoint, EnergyStats
from qbench.reports import roofline as roofline_report
from qbench.reports.writers import FORMATS, write_reports
from qbench.workspace import CACHE_ENV

MODES = ["fp32", "int8-ptq"]


def _qbench(cwd: Path, cache: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "qbench.cli.main", *args],
        cwd=cwd,
        env={**os.environ, CACHE_ENV: str(cache)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def benched(tiny_baseline_root, tmp_path_factory) -> Path:
    """fp32 and int8-ptq of the tiny baseline, benched at batch 1 and 4 with 1 thread."""
    top = tmp_path_factory.mktemp("roofline")
    root = top / "runs" / "default"
    shutil.copytree(tiny_baseline_root, root)
    cache = top / "cache"
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        machine = env.capture()  # the fingerprint a bench worker with --threads 1 computes
        quick = limits.measure(machine, quick=True)
    finally:
        torch.set_num_threads(threads)
    path = cache / "limits" / f"{machine.fingerprint()}.json"
    dataclasses.replace(quick, fingerprint=machine.fingerprint()).save_json(path)
    ws = ["--runs-dir", str(top / "runs"), "--exp", "default"]
    _qbench(
        top,
        cache,
        "quantize",
        "--mode",
        ",".join(MODES),
        "--calib-batches",
        "2",
        "--calib-batch-size",
        "16",
        *ws,
    )
    _qbench(
        top, cache, "bench", "--batch-sizes", "1,4", "--iters", "5", "--warmup", "1", "--threads", "1",
        "--no-accuracy", *ws,
    )  # fmt: skip
    assert sorted(p.name for p in (cache / "limits").iterdir()) == [path.name]  # nothing measured anew
    return root


@pytest.fixture(scope="module")
def results(benched) -> dict[str, BenchResult]:
    return {m: BenchResult.from_json(benched / "results" / f"{m}.json") for m in MODES}


@pytest.fixture(scope="module")
def rendered(benched, tmp_path_factory) -> Path:
    """Every format, rendered without the limits cache (the records carry the limits)."""
    out = tmp_path_factory.mktemp("roofline-reports")
    write_reports(benched, FORMATS, out)
    return out


def test_each_result_carries_its_roofline_against_the_cached_limits(results):
    for mode, r in results.items():
        roof = r.roofline
        assert roof is not None, (mode, r.notes)
        assert "(quick measurement)" in roof.limits_measured  # the cached record, found by fingerprint
        assert roof.limits is not None and roof.limits.bandwidth is not None
        assert [p.batch_size for p in roof.points] == [1, 4]
        assert roof.weight_bytes > 0 and roof.activation_bytes_per_image > 0 and roof.floor_ms > 0
        for p, s in zip(roof.points, r.latency, strict=True):
            # achieved rate and fraction follow from the recorded median and the recorded inputs
            assert p.achieved_rate == pytest.approx(
                2 * r.model.flops * s.batch_size / (s.median_ms / 1e3) / 1e9
            )
            assert p.fraction == pytest.approx(p.achieved_rate / p.bound_rate)
            assert 0 < p.fraction < 10 and math.isfinite(p.over_floor)
        assert r.energy is not None
        if not Path("/sys/class/powercap").is_dir():
            assert r.energy.reason == "n/a (no RAPL counters on this machine)"
    assert results["int8-ptq"].roofline.precision == "int8"
    assert results["fp32"].roofline.precision == "fp32"
    assert results["fp32"].roofline.weight_bytes == 4 * results["int8-ptq"].roofline.weight_bytes


def test_html_shows_the_limits_the_roofline_table_and_the_figure(rendered, results):
    page = (rendered / "report.html").read_text()
    assert 'id="roofline"' in page and 'class="machine-limits"' in page
    assert "memory bandwidth" in page and "int8 matmul peak" in page and "quick measurement" in page
    table = page.split('id="roofline-table"', 1)[1].split("</table>", 1)[0]
    for mode, r in results.items():
        for p in r.roofline.points:
            row = table.split(f'/{mode}" data-batch="{p.batch_size}"', 1)[1].split("</tr>")[0]
            assert roofline_report.percent(p.fraction) in row and p.bound in row
    assert 'id="fig-roofline"' in page and "data:image/png;base64," in page
    assert (rendered / "figures" / "roofline.svg").is_file()


def test_md_tex_and_text_reports_show_the_roofline(rendered, results):
    md = (rendered / "report.md").read_text()
    assert "Roofline" in md and "| int8-ptq | 1 |" in md and "fp32 matmul peak" in md
    tex = (rendered / "report.tex").read_text()
    assert "tab:qbench-roofline" in tex and "roofline.pdf" in tex
    text = (rendered / "int8-ptq.txt").read_text()
    assert "Roofline (this machine's measured limits)" in text and "Compute Roof (int8)" in text
    assert "Weight-streaming Floor" in text and "Energy: " in text
    p1 = results["int8-ptq"].roofline.at(1)
    assert roofline_report.percent(p1.fraction) in text


def test_csv_and_json_carry_the_roofline(rendered, results):
    rows = list(csv.DictReader(io.StringIO((rendered / "report.csv").read_text())))
    for row in rows:
        p = results[row["variant"]].roofline.at(int(row["batch_size"]))
        assert float(row["roofline_fraction"]) == pytest.approx(p.fraction)
        assert row["roofline_bound"] == p.bound and float(row["over_weight_floor"]) == pytest.approx(
            p.over_floor
        )
    data = json.loads((rendered / "report.json").read_text())
    assert sorted(key.split("/")[-1] for key in data["roofline_by_key"]) == sorted(MODES)
    assert data["machine_limits"][0]["limits"]["bandwidth"]["gbytes_per_s"] > 0


def test_cli_summary_lines(results):
    lines = roofline_report.summary_lines(list(results.values()))
    assert lines[0].startswith("roofline on cpu: read bandwidth")
    for mode in MODES:
        line = next(line for line in lines if line.strip().startswith(f"{mode} ("))
        assert "b1 " in line and "b4 " in line and "weight floor" in line and "knee b" in line


def test_a_result_from_before_the_roofline_renders_na(benched, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(benched, root)
    path = root / "results" / "int8-ptq.json"
    data = json.loads(path.read_text())
    del data["roofline"], data["energy"]
    path.write_text(json.dumps(data))
    out = tmp_path / "out"
    write_reports(root, ["html", "text", "md"], out)
    assert str(markupsafe.escape(roofline_report.STALE)) in (out / "report.html").read_text()
    assert roofline_report.STALE in (out / "int8-ptq.txt").read_text()


def test_energy_readings_show_per_batch_size_where_the_machine_has_counters(benched, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(benched, root)
    path = root / "results" / "int8-ptq.json"
    result = BenchResult.from_json(path)
    result.energy = EnergyStats(
        source="RAPL package-0 (fake)",
        window="the timed calls",
        scope="the whole CPU package",
        points=[EnergyPoint(1, 2.0, 1.0, 100, 0.02, 2.0), EnergyPoint(4, 8.0, 2.0, 400, 0.02, 4.0)],
    )
    result.save_json(path)
    out = tmp_path / "out"
    write_reports(root, ["html", "text", "csv"], out)
    page = (out / "report.html").read_text()
    assert '<th class="text">Energy</th>' in page and "0.02 J/image (4.0 W)" in page
    text = (out / "int8-ptq.txt").read_text()
    assert "Energy: RAPL package-0 (fake)" in text and "batch 4: 0.02 J/image (4.0 W)" in text
    rows = [
        r for r in csv.DictReader(io.StringIO((out / "report.csv").read_text())) if r["variant"] == "int8-ptq"
    ]
    assert [float(r["joules_per_image"]) for r in rows] == [0.02, 0.02]
