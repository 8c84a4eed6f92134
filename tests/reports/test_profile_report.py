"""Per-layer profiles in every report format, rendered from a real profiled tiny workspace."""

from __future__ import annotations

import json
import shutil

import pytest

from qbench.records import BenchResult, LayerProfile, LayerTime
from qbench.reports.profiles import OVERHEAD_LABEL, agreement_text, breakdown, ms_text
from qbench.reports.writers import FORMATS, write_reports
from qbench.workspace import Workspace
from tests.profile_workspace import PROFILED_MODES, profiled_workspace


@pytest.fixture(scope="module")
def rendered(tiny_baseline_root, tmp_path_factory):
    """(workspace, results by mode, reports folder) with every format written."""
    root = tmp_path_factory.mktemp("profile-report") / "default"
    shutil.copytree(profiled_workspace(tiny_baseline_root, tmp_path_factory), root)
    ws = Workspace(root)
    write_reports(ws, FORMATS, ws.reports_dir)
    results = {m: BenchResult.from_json(ws.result_path(m)) for m in PROFILED_MODES}
    return ws, results, ws.reports_dir


def test_text_report_has_the_profile_of_each_batch_size(rendered):
    _, results, reports = rendered
    text = (reports / "int8-ptq.txt").read_text()
    section = text[text.index("Per-layer Profile") : text.index("Inference Methodology")]
    for p in results["int8-ptq"].profiles:
        assert f"Batch {p.batch_size}: torch.profiler" in section
        assert f"Per-layer Sum: {ms_text(p.layer_sum_ms)} ms" in section
        assert f"Measured Median Latency: {ms_text(p.median_ms)} ms" in section
        assert f"Overhead (framework/unattributed): {ms_text(p.overhead_ms)} ms" in section
    assert "quantized::conv2d_relu" in section and "float32→int8" in section and "dequantize" in section
    assert "features.0" in (reports / "onnx-int8.txt").read_text().split("Per-layer Profile")[1]


def test_html_tables_match_the_records(rendered):
    from bs4 import BeautifulSoup

    _, results, reports = rendered
    soup = BeautifulSoup((reports / "report.html").read_text(), "html.parser")
    section = soup.find("h2", id="profiles")
    assert section is not None
    for mode, result in results.items():
        table = soup.find(
            "table", attrs={"class": "layer-profile", "data-variant": lambda v, m=mode: v.endswith(f"/{m}")}
        )
        assert table is not None, mode
        rows = table.find("tbody").find_all("tr")
        first = result.profiles[0]
        assert [(r["data-layer"], r["data-kind"]) for r in rows][: len(first.layers)] == [
            (row.layer, row.kind) for row in first.layers
        ]
        conv = next(r for r in rows if r["data-layer"] == "features.0" and r["data-kind"] == "compute")
        cells = [td.get_text(strip=True) for td in conv.find_all("td")]
        record = next(row for row in first.layers if (row.layer, row.kind) == ("features.0", "compute"))
        assert cells[4] == ms_text(record.ms) and cells[5] == f"{record.share * 100:.1f}%"
        overhead = [
            td.get_text(strip=True) for td in table.find("tr", class_="profile-overhead").find_all("td")
        ]
        assert overhead[0::2] == [ms_text(p.overhead_ms) for p in result.profiles]
        median = [td.get_text(strip=True) for td in table.find("tr", class_="profile-median").find_all("td")]
        assert median[0::2] == [ms_text(p.median_ms) for p in result.profiles]
    figure = soup.find("figure", id="fig-profiles")
    assert figure is not None and figure.find("img")["src"].startswith("data:image/png;base64,")
    assert all((reports / "figures" / f"layer_profiles.{ext}").is_file() for ext in ("png", "svg", "pdf"))


def test_markdown_json_and_latex(rendered, tmp_path):
    from tests.reports.system_tools import compile_latex

    _, results, reports = rendered
    md = (reports / "report.md").read_text()
    assert "**Per-layer profiles**" in md and f"**{OVERHEAD_LABEL}**" in md
    assert "| features.0 | compute | int8 | QLinearConv |" in md
    data = json.loads((reports / "report.json").read_text())
    section = next(v for k, v in data["profile_by_key"].items() if k.endswith("/onnx-int8"))
    record = results["onnx-int8"].profiles[0]
    assert section["totals"][0]["record"]["layer_sum_ms"] == pytest.approx(record.layer_sum_ms)
    tex = (reports / "report.tex").read_text()
    assert "Per-layer profile of int8-ptq" in tex and r"float32$\rightarrow$int8" in tex
    proc = compile_latex(reports, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_a_result_without_profile_says_how_to_get_one(rendered, tmp_path):
    ws, results, _ = rendered
    copy = tmp_path / "runs" / "default"
    shutil.copytree(ws.root, copy)
    plain = results["fp32"]
    plain.profiles = []
    plain.save_json(Workspace(copy).result_path("fp32"))
    out = tmp_path / "out"
    write_reports(copy, ["text", "html"], out)
    text = (out / "fp32.txt").read_text()
    assert "n/a (no per-layer profile: rerun 'qbench bench --profile')" in text.split("Per-layer Profile")[1]
    assert 'data-variant="' in (out / "report.html").read_text()


def _profile(median: float, rows: list[tuple[str, str, str, float]]) -> LayerProfile:
    total = sum(ms for *_, ms in rows)
    layers = [LayerTime(layer, kind, precision, ms, ms / total) for layer, kind, precision, ms in rows]
    return LayerProfile(1, "test", 5, median, 2.0, total, median - total, layers)


def test_breakdown_and_agreement_sentences():
    rows = [
        ("quant", "quantize", "float32→int8", 0.1),
        ("features.0", "compute", "int8", 0.5),
        ("features.0", "layout", "int8", 0.1),
        ("classifier.2", "compute", "float32", 0.2),
        ("dequant", "dequantize", "int8→float32", 0.05),
    ]
    p = _profile(1.0, rows)
    parts = dict(breakdown(p))
    assert parts == pytest.approx(
        {
            "int8 compute": 0.5,
            "float32 compute": 0.2,
            "quantize/dequantize": 0.15,
            "layout conversions": 0.1,
            OVERHEAD_LABEL: 0.05,
        }
    )
    assert sum(parts.values()) == pytest.approx(p.median_ms)  # the breakdown accounts for the latency
    assert "within 10%" in agreement_text(p)
    assert "the other 25% is overhead (framework/unattributed)" in agreement_text(_profile(0.95 / 0.75, rows))
    assert "20% more than the unprofiled latency" in agreement_text(_profile(0.79166, rows))
