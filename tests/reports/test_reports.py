"""Render every report format from the recorded workspace and check it against the records."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from qbench.errors import QBenchError
from qbench.harness.result import BenchResult
from qbench.reports.context import build_context, load_sources
from qbench.reports.writers import parse_formats, write_reports

REFERENCE_000 = Path("/work/shared/reference")
MODES = ["fp32", "int8-ptq", "onnx", "qat", "tensorrt-fp16"]
SECTIONS = [
    "1. EXPERIMENT METADATA",
    "2. MODEL ARCHITECTURE SPECIFICATIONS",
    "3. TRAINING CONFIGURATION",
    "4. TRAINING RESULTS",
    "5. INFERENCE PERFORMANCE ANALYSIS",
    "6. TRAINING STABILITY ANALYSIS",
]
# every field name of reference 000 (kept here so the test runs without the reference folder)
FIELDS_000 = [
    "Experiment Name:", "Timestamp:", "Pytorch Version:", "Cuda Version:", "Device:", "Random Seed:",
    "Reproducibility Notes:", "Architecture:", "Precision:", "Total Parameters:", "Trainable Parameters:",
    "Model Size:", "FLOPs per Forward Pass:", "Input Resolution:", "Number of Classes:", "Data Type:",
    "Epochs Trained:", "Batch Size:", "Optimizer:", "Learning Rate:", "Weight Decay:", "Scheduler:",
    "Early Stopping Patience:", "Loss Function:", "Data Augmentation:", "Mixed Precision:",
    "Best Validation Accuracy:", "Final Training Accuracy:", "Final Validation Accuracy:",
    "Final Training Loss:", "Final Validation Loss:", "Convergence Epoch:", "Early Stopping Triggered:",
    "Final Test Accuracy:", "Benchmark Results by Batch Size:",
    "Batch Size   Mean Time (ms)  Per Image (ms)  Throughput (FPS)", "Memory Usage Analysis:",
    "Model Size on Disk:", "GPU Runtime Memory:", "CPU Runtime Memory:", "Inference Methodology:",
    "• Warm-up Passes:", "• Benchmark Runs:", "• Batch Sizes Tested:", "• Backend:", "• Synchronization:",
    "• Reproducibility:", "• Best accuracy achieved at epoch", "• Early stopping:",
]  # fmt: skip
BASELINE_7 = [
    "7. BASELINE REFERENCE FOR FUTURE COMPARISONS", "Key Baseline Metrics to Track:", "• Accuracy:",
    "• Model Size:", "• Parameter Count:", "• Computational Cost:", "• Inference Latency:",
]  # fmt: skip
VARIANT_7 = [
    "7. COMPARISON WITH THE FP32 BASELINE", "• Size Ratio:", "• Speedup by Batch Size", "• Accuracy Change:",
    "• Top-1 Agreement:", "• Logit Differences:",
]  # fmt: skip


def result(root: Path, mode: str) -> BenchResult:
    return BenchResult.from_json(root / "results" / f"{mode}.json")


def test_fixture_round_trips_and_stays_small():
    from tests.reports.conftest import FIXTURE_WS

    total = sum(p.stat().st_size for p in FIXTURE_WS.rglob("*") if p.is_file())
    assert total < 200 * 1024
    for mode in MODES:
        data = json.loads((FIXTURE_WS / "results" / f"{mode}.json").read_text())
        assert BenchResult.from_dict(data).to_dict() == data


def test_reference_fields_list_matches_reference_000():
    ref = next(REFERENCE_000.glob("000_*.txt"), None) if REFERENCE_000.is_dir() else None
    if ref is None:
        pytest.skip("reference 000 is not available on this machine")
    text = ref.read_text()
    for name in FIELDS_000 + BASELINE_7:
        assert name in text, name


def test_text_report_has_reference_structure(rendered):
    root, written = rendered
    assert sorted(p.name for p in written["text"]) == sorted(f"{m}.txt" for m in MODES)
    for mode in MODES:
        text = (root / "reports" / f"{mode}.txt").read_text()
        positions = [text.index(s) for s in SECTIONS]
        assert positions == sorted(positions)
        for name in FIELDS_000 + (BASELINE_7 if mode == "fp32" else VARIANT_7):
            assert name in text, f"{mode}: {name}"
        assert text.startswith("=" * 100 + "\n")


def test_fp32_text_numbers_come_from_records(rendered):
    root, _ = rendered
    text = (root / "reports" / "fp32.txt").read_text()
    r = result(root, "fp32")
    train = json.loads((root / "baseline" / "train.json").read_text())
    assert "ALEXNET FP32 BASELINE - COMPREHENSIVE ANALYSIS REPORT" in text
    assert f"Total Parameters: {train['summary']['total_params']:,}" in text
    assert f"FLOPs per Forward Pass: {train['summary']['flops'] / 1e6:.3f}M" in text
    assert f"Model Size: {train['summary']['size_mb']:.2f} MB" in text
    assert f"Final Test Accuracy: {r.accuracy.top1:.4f}%" in text
    assert f"Best Validation Accuracy: {train['metrics']['best_val_acc']:.4f}%" in text
    assert f"Final Training Loss: {train['metrics']['final_train_loss']:.6f}" in text
    assert "GPU Runtime Memory: n/a (no CUDA device)" in text
    assert f"CPU Runtime Memory: {r.memory.runtime_mb:.2f} MB" in text
    for s in r.latency:
        row = (
            f"{s.batch_size:<13}{s.mean_ms:<16.2f}{s.mean_ms / s.batch_size:<16.2f}{s.throughput_ips:<15.1f}"
        )
        assert row in text
    assert f"• Inference Latency: {r.latency_at(1).mean_ms:.2f} ms" in text


def test_variant_text_compares_with_fp32(rendered):
    root, _ = rendered
    text = (root / "reports" / "int8-ptq.txt").read_text()
    r, base = result(root, "int8-ptq"), result(root, "fp32")
    assert f"Size Ratio: {r.size_mb / base.size_mb:.2f}x" in text
    for s in r.latency:
        ref = base.latency_at(s.batch_size)
        assert f"Batch {s.batch_size}: {ref.mean_ms / s.mean_ms:.2f}x" in text
    assert f"Accuracy Change: {r.accuracy.top1 - base.accuracy.top1:+.2f} pp" in text
    assert f"Top-1 Agreement: {r.accuracy.agreement.top1_agreement:.2f}%" in text
    assert "Calibration: minmax, 8 batches (256 images)" in text
    qat = (root / "reports" / "qat.txt").read_text()
    assert "QAT Fine-tuning History:" in qat and "epoch 2, train loss 0.287905" in qat
    skipped = (root / "reports" / "tensorrt-fp16.txt").read_text()
    assert "Final Test Accuracy: n/a (skipped: no CUDA device)" in skipped
    assert "Size Ratio: n/a (skipped: no CUDA device)" in skipped
    noisy = (root / "reports" / "onnx.txt").read_text()
    assert "! batch 8: noisy: CV" in noisy


def _cell_texts(row) -> list[str]:
    return [c.get_text(" ", strip=True) for c in row.find_all(["td", "th"])]


def test_html_tables_match_records(rendered):
    from bs4 import BeautifulSoup

    root, _ = rendered
    soup = BeautifulSoup((root / "reports" / "report.html").read_text(), "html.parser")
    assert not soup.find_all(["script", "link"]), "the report must be self-contained"
    for img in soup.find_all("img"):
        assert img["src"].startswith("data:image/png;base64,")
    summary = {tr["data-variant"].split("/")[-1]: tr for tr in soup.select("#summary-table tbody tr")}
    assert sorted(summary) == sorted(MODES)
    base = result(root, "fp32")
    for mode in ("fp32", "int8-ptq", "onnx", "qat"):
        r = result(root, mode)
        cells = _cell_texts(summary[mode])
        assert f"{r.size_mb:.2f} MB" in cells
        assert f"{r.accuracy.top1:.2f}%" in cells
        assert f"{r.latency_at(1).mean_ms:.2f} ms" in cells
        assert f"{r.size_mb / base.size_mb:.2f}x" in cells
    assert "n/a (skipped: no CUDA device)" in " ".join(_cell_texts(summary["tensorrt-fp16"]))
    assert "noisy" in " ".join(_cell_texts(summary["onnx"]))
    lat = soup.select("#latency-table tbody tr[data-batch]")
    assert len(lat) == 4 * 5
    for tr in lat:
        r = result(root, tr["data-variant"].split("/")[-1])
        s = r.latency_at(int(tr["data-batch"]))
        cells = _cell_texts(tr)
        assert cells[2] == f"{s.mean_ms:.2f}" and cells[3] == f"{s.median_ms:.2f}"
        assert cells[4] == f"{s.p95_ms:.2f}" and cells[9] == f"{s.throughput_ips:,.1f}"
        assert ("noisy" in cells[-1]) == s.noisy
    mem = {tr["data-variant"].split("/")[-1]: _cell_texts(tr) for tr in soup.select("#memory-table tbody tr")}
    assert "n/a (no CUDA device)" in mem["fp32"]
    assert f"{base.memory.runtime_mb:.2f} MB" in mem["fp32"]
    per_class = soup.select("table.per-class")
    assert len(per_class) == 4
    assert {f["id"] for f in soup.find_all("figure")} >= {
        "fig-latency",
        "fig-throughput",
        "fig-accuracy_size",
    }


def test_csv_one_row_per_variant_and_batch(rendered):
    root, _ = rendered
    rows = list(csv.DictReader((root / "reports" / "report.csv").open()))
    assert len(rows) == 4 * 5 + 1
    by = {(r["variant"], r["batch_size"]): r for r in rows}
    s = result(root, "qat").latency_at(16)
    assert float(by[("qat", "16")]["mean_ms"]) == s.mean_ms
    assert by[("tensorrt-fp16", "")]["skip_reason"] == "no CUDA device"


def test_json_and_markdown_and_figures(rendered):
    root, written = rendered
    data = json.loads((root / "reports" / "report.json").read_text())
    assert [v["mode"] for v in data["variants"]] == MODES
    md = (root / "reports" / "report.md").read_text()
    assert len(md) < 65536 and "| int8-ptq |" in md and "⚠ noisy" in md
    names = {p.name for p in written["figures"]}
    for stem in ("latency_vs_batch", "throughput_vs_batch", "accuracy_vs_size", "confusion", "training"):
        for ext in ("svg", "png", "pdf"):
            assert f"{stem}.{ext}" in names
    tex = (root / "reports" / "report.tex").read_text()
    assert (
        r"\toprule" in tex
        and r"\includegraphics[width=0.9\linewidth]{\qbenchfigdir latency_vs_batch.pdf}" in tex
    )


def test_latex_compiles_where_pdflatex_is_installed(rendered, tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (TeX is not installed by the tests)")
    root, _ = rendered
    main = tmp_path / "main.tex"
    reports = root / "reports"
    main.write_text(
        "\\documentclass{article}\\usepackage{booktabs}\\usepackage{graphicx}\\usepackage[margin=1cm]{geometry}\n"
        f"\\newcommand{{\\qbenchfigdir}}{{{reports.as_posix()}/figures/}}\n"
        f"\\begin{{document}}\\input{{{reports.as_posix()}/report.tex}}\\end{{document}}\n"
    )
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", main.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "main.pdf").stat().st_size > 0


def test_latex_escaping():
    from qbench.reports.fmt import latex

    assert latex("a_b & 50% #1 $x ~ {y}") == r"a\_b \& 50\% \#1 \$x \textasciitilde{} \{y\}"


def test_formats_and_bad_input(recorded_ws, tmp_path):
    assert parse_formats("html, md") == ["html", "md"]
    assert parse_formats("all") == ["text", "html", "md", "latex", "csv", "json"]
    with pytest.raises(QBenchError, match="unknown report format"):
        parse_formats("pdf")
    with pytest.raises(QBenchError, match="does not exist"):
        write_reports(tmp_path / "empty", ["text"], tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(QBenchError, match="no results"):
        load_sources([tmp_path / "empty"])
    with pytest.raises(QBenchError, match="does not exist"):
        write_reports(recorded_ws, ["text"], templates_dir=tmp_path / "missing")


def test_missing_optional_records(recorded_ws, tmp_path):
    """No train.json, no variant.json: every field still prints, with its reason."""
    (recorded_ws / "baseline" / "train.json").unlink()
    shutil.rmtree(recorded_ws / "variants")
    written = write_reports(recorded_ws, ["text", "md", "csv", "json"], tmp_path / "out")
    text = (tmp_path / "out" / "int8-ptq.txt").read_text()
    assert "Optimizer: n/a (no training record" in text
    assert "Total Parameters: 57,044,810" in text  # from the result's model facts
    assert len(written["text"]) == 5


def test_undefined_variable_in_user_template_is_an_error(recorded_ws, tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "report.md.j2").write_text("{{ title }} {{ no_such_variable }}\n")
    with pytest.raises(QBenchError, match=r"report\.md\.j2 uses an undefined variable.*no_such_variable"):
        write_reports(recorded_ws, ["md"], tmp_path / "out", templates_dir=tpl)
    assert not (tmp_path / "out" / "report.md").exists()
    (tpl / "report.md.j2").write_text("{% for v in variants %}{{ v.nope }}{% endfor %}")
    with pytest.raises(QBenchError, match="undefined variable"):
        write_reports(recorded_ws, ["md"], tmp_path / "out", templates_dir=tpl)


def test_templates_override_takes_precedence(recorded_ws, tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "report.md.j2").write_text(
        "CUSTOM {% for v in variants %}{{ v.mode }}={{ v.cells.top1 }};{% endfor %}\n"
    )
    write_reports(recorded_ws, ["md", "text"], tmp_path / "out", templates_dir=tpl)
    md = (tmp_path / "out" / "report.md").read_text()
    assert md.startswith("CUSTOM fp32=97.50%;int8-ptq=")
    assert "1. EXPERIMENT METADATA" in (tmp_path / "out" / "fp32.txt").read_text()  # not overridden


def test_multi_source_labels_by_machine(recorded_ws, tmp_path):
    other = tmp_path / "runs" / "other"
    shutil.copytree(recorded_ws, other)
    for p in (other / "results").glob("*.json"):
        data = json.loads(p.read_text())
        data["env"] = {**data["env"], "hostname": "edge-box", "cpu_model": "ARM Neoverse-N1"}
        p.write_text(json.dumps(data))
    sources = load_sources(
        [recorded_ws, other / "results" / "int8-ptq.json", other / "results" / "fp32.json"]
    )
    assert [s.label for s in sources] == [
        "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz (bench-ci-01)",
        "ARM Neoverse-N1 (edge-box)",
    ]
    ctx = build_context(sources)
    labels = [v["label"] for v in ctx["variants"]]
    assert "int8-ptq @ ARM Neoverse-N1 (edge-box)" in labels and len(labels) == 7
    same = load_sources([recorded_ws, tmp_path / "runs" / "other"])
    assert same[0].label != same[1].label
    written = write_reports(sources, ["html", "text"], tmp_path / "cmp")
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert "ARM Neoverse-N1 (edge-box)" in html and "bench-ci-01" in html
    assert len(written["text"]) == 7


def test_cli_compare(recorded_ws, qbench_cli, tmp_path):
    proc = qbench_cli("compare", "--report", "md,csv", "--runs-dir", str(recorded_ws.parent))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        str(recorded_ws / "reports" / "report.md"),
        str(recorded_ws / "reports" / "report.csv"),
    ]
    proc = qbench_cli("compare", "--report", "nope", "--runs-dir", str(recorded_ws.parent))
    assert proc.returncode == 2 and "unknown report format" in proc.stderr and "Traceback" not in proc.stderr
    proc = qbench_cli("compare", "--runs-dir", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and "no results" in proc.stderr
    proc = qbench_cli("compare", str(recorded_ws), "--report", "json", "--out", str(tmp_path / "o"))
    assert proc.returncode == 0 and re.search(r"report\.json$", proc.stdout.strip())
