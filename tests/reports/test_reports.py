"""Every report format built from a real tiny pipeline run, checked against the records."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

from qbench.errors import QBenchError
from qbench.harness.stats import robust_cv
from qbench.records import BenchResult, TrainRecord, VariantRecord
from qbench.reports.context import build_context
from qbench.reports.fmt import ratio
from qbench.reports.sources import load_sources
from qbench.reports.writers import parse_formats, write_reports
from tests.reports.conftest import MODES

REFERENCE_000 = Path("/work/shared/reference")
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
    "7. COMPARISON WITH THE FP32 BASELINE", "• Size Ratio:", "• Speedup by Batch Size (median latency",
    "• Accuracy Change:", "• Top-1 Agreement:", "• Logit Differences:",
]  # fmt: skip


def result(root: Path, mode: str) -> BenchResult:
    return BenchResult.from_json(root / "results" / f"{mode}.json")


def ok_results(root: Path) -> dict[str, BenchResult]:
    results = {m: result(root, m) for m in MODES}
    return {m: r for m, r in results.items() if r.ok}


def test_real_run_wrote_every_record(real_run):
    train = TrainRecord.from_json(real_run / "baseline" / "train.json")
    assert train.source.kind == "train" and train.training is not None
    ok = ok_results(real_run)
    assert {"fp32", "int8-ptq", "onnx", "qat"} <= set(ok)
    for mode in MODES:
        assert VariantRecord.from_json(real_run / "variants" / mode / "variant.json").mode == mode
    for r in ok.values():
        assert [s.batch_size for s in r.latency] == [1, 4] and r.accuracy is not None
        assert r.to_dict() == BenchResult.from_dict(r.to_dict()).to_dict()
    qat = ok["qat"].variant
    assert qat is not None and qat.qat is not None and qat.qat.history


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
    train = TrainRecord.from_json(root / "baseline" / "train.json")
    last = train.history[-1]
    assert "TINY-CNN FP32 BASELINE - COMPREHENSIVE ANALYSIS REPORT" in text
    assert f"Total Parameters: {train.summary.total_params:,}" in text
    assert f"FLOPs per Forward Pass: {train.summary.flops / 1e6:.3f}M" in text
    assert f"Model Size: {train.summary.size_mb:.2f} MB" in text
    assert f"Final Test Accuracy: {r.accuracy.top1:.4f}%" in text
    assert f"Top-5 Test Accuracy: {r.accuracy.top5:.4f}%" in text
    assert f"top-1 {r.accuracy.top1_error:.2f}%, top-5 {r.accuracy.top5_error:.2f}%" in text
    assert f"Best Validation Accuracy: {train.outcome.best_val_acc:.4f}%" in text
    assert f"Final Training Accuracy: {last.train_acc:.4f}%" in text
    assert f"Final Training Loss: {last.train_loss:.6f}" in text
    assert f"Epochs Trained: {train.outcome.epochs_trained}" in text
    assert "Mixed Precision: False (FP32 training, no autocast)" in text
    seed = train.training.seed
    assert (
        f"Reproducibility Notes: Fixed random seed ({seed}), deterministic algorithms requested (warn-only)"
        in text
    )
    assert "Cuda Version: n/a (no CUDA device)" in text  # a CPU run
    assert "GPU Runtime Memory: n/a (no CUDA device)" in text
    assert f"CPU Runtime Memory: {r.memory.runtime_mb:.2f} MB" in text
    for s in r.latency:  # reference 000's table keeps the mean, then the median and its CI
        row = f"{s.batch_size:<13}{s.mean_ms:<16.2f}{s.mean_ms / s.batch_size:<16.2f}{s.throughput_ips:<18.1f}{s.median_ms:<13.2f}"
        assert row in text
    assert f"• Inference Latency: {r.latency_at(1).median_ms:.2f} ms (median)" in text


def test_variant_text_compares_medians_with_fp32(rendered):
    root, _ = rendered
    base = result(root, "fp32")
    for mode, r in ok_results(root).items():
        text = (root / "reports" / f"{mode}.txt").read_text()
        if mode == "fp32":
            continue
        assert f"Size Ratio: {r.size_mb / base.size_mb:.2f}x" in text
        for s in r.latency:
            ref = base.latency_at(s.batch_size)
            line = f"Batch {s.batch_size}: {ratio(ref.median_ms / s.median_ms)} ({s.median_ms:.2f} ms vs {ref.median_ms:.2f} ms)"
            assert line in text, mode
        assert f"Accuracy Change: {r.accuracy.top1 - base.accuracy.top1:+.2f} pp" in text
        assert f"Top-5 Accuracy Change: {r.accuracy.top5 - base.accuracy.top5:+.2f} pp" in text
        assert f"Top-1 Agreement: {r.accuracy.agreement.top1_agreement:.2f}%" in text
    ptq = VariantRecord.from_json(root / "variants" / "int8-ptq" / "variant.json")
    text = (root / "reports" / "int8-ptq.txt").read_text()
    assert f"Calibration: {ptq.calibration.method}, {ptq.calibration.batches} batches" in text
    # a quantized variant takes and returns floats, and says what its weights are
    assert f"Data Type: torch.{ptq.dtype} (inputs and outputs; weights {ptq.weights.split()[0]})" in text
    assert "Data Type: torch.float32\n" in (root / "reports" / "fp32.txt").read_text()


def test_qat_history_in_percent_with_loss(rendered):
    root, _ = rendered
    qat = VariantRecord.from_json(root / "variants" / "qat" / "variant.json").qat
    text = (root / "reports" / "qat.txt").read_text()
    assert "QAT Fine-tuning History:" in text
    for h in qat.history:
        assert 1.0 < h.train_acc <= 100.0  # the record holds percent, not a fraction
        line = f"epoch {h.epoch}, train loss {h.train_loss:.6f}, train acc {h.train_acc:.2f}%, val acc {h.val_acc:.2f}%"
        assert line in text


def test_imported_checkpoint_prints_na_not_zero(real_ws, tmp_path):
    """An import has no training config, outcome or history: n/a with the reason, never 0.0/False."""
    path = real_ws / "baseline" / "train.json"
    train = TrainRecord.from_json(path)
    imported = dataclasses.replace(
        train,
        source=dataclasses.replace(train.source, kind="import", checkpoint="/ckpt/alexnet.pth"),
        training=None,
        training_precision=None,
        outcome=None,
        history=[],
    )
    imported.save_json(path)
    write_reports(real_ws, ["text", "html"], tmp_path / "out")
    text = (tmp_path / "out" / "fp32.txt").read_text()
    na = "n/a (imported checkpoint: not trained by qbench)"
    for field in ("Epochs Trained", "Optimizer", "Best Validation Accuracy", "Final Training Loss",
                  "Convergence Epoch", "Early Stopping Triggered", "Training Time", "Mixed Precision"):  # fmt: skip
        assert f"{field}: {na}" in text, field
    assert "• Early stopping: " + na in text
    assert "0.0 s" not in text and "Early Stopping Triggered: False" not in text


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
    ok = ok_results(root)
    base = ok["fp32"]
    for mode, r in ok.items():
        cells = _cell_texts(summary[mode])
        b1 = r.latency_at(1)
        assert f"{r.size_mb:.2f} MB" in cells
        assert f"{r.accuracy.top1:.2f}%" in cells and f"{r.accuracy.top5:.2f}%" in cells
        assert f"{b1.median_ms:.2f} ms" in cells  # batch-1 latency is the median
        assert f"{b1.median_ci_low_ms:.2f}–{b1.median_ci_high_ms:.2f} ms" in cells
        assert f"{r.size_mb / base.size_mb:.2f}x" in cells
        acc = _cell_texts(soup.select_one(f'#accuracy-table tr[data-variant$="/{mode}"]'))
        assert acc[1:5] == [
            f"{v:.2f}%"
            for v in (r.accuracy.top1, r.accuracy.top5, r.accuracy.top1_error, r.accuracy.top5_error)
        ]
    lat = soup.select("#latency-table tbody tr[data-batch]")
    assert len(lat) == sum(len(r.latency) for r in ok.values())
    for tr in lat:
        r = ok[tr["data-variant"].split("/")[-1]]
        s = r.latency_at(int(tr["data-batch"]))
        cells = _cell_texts(tr)
        assert (
            cells[2] == f"{s.median_ms:.2f}"
            and cells[3] == f"{s.median_ci_low_ms:.2f}–{s.median_ci_high_ms:.2f}"
        )
        assert cells[4] == f"{s.mean_ms:.2f}"
        assert cells[11] == ratio(base.latency_at(s.batch_size).median_ms / s.median_ms)
        assert ("noisy" in cells[-1]) == s.noisy
        # the CV shown is the one the noisy flag tests (IQR-based), not std/mean
        robust = robust_cv(s.iqr_ms, s.median_ms)
        assert cells[8] == f"{robust * 100:.1f}%" and (robust > r.settings.options.cv_threshold) == s.noisy
    mem = {tr["data-variant"].split("/")[-1]: _cell_texts(tr) for tr in soup.select("#memory-table tbody tr")}
    assert "n/a (no CUDA device)" in mem["fp32"]
    assert f"{base.memory.runtime_mb:.2f} MB" in mem["fp32"]
    qat = ok["qat"].variant.qat
    rows = [_cell_texts(tr) for tr in soup.select("table.qat-history tbody tr")]
    assert rows == [
        [str(h.epoch), f"{h.train_loss:.6f}", f"{h.train_acc:.2f}", f"{h.val_acc:.2f}"] for h in qat.history
    ]
    assert {f["id"] for f in soup.find_all("figure")} >= {
        "fig-latency",
        "fig-throughput",
        "fig-accuracy_size",
        "fig-training",
    }


def test_csv_reads_back_as_the_records(rendered):
    root, _ = rendered
    rows = list(csv.DictReader((root / "reports" / "report.csv").open()))
    ok = ok_results(root)
    skipped = [m for m in MODES if m not in ok]
    assert len(rows) == sum(len(r.latency) for r in ok.values()) + len(skipped)
    by = {(r["variant"], r["batch_size"]): r for r in rows}
    base = ok["fp32"]
    for mode, r in ok.items():
        for s in r.latency:
            row = by[(mode, str(s.batch_size))]
            for key in ("median_ms", "median_ci_low_ms", "median_ci_high_ms", "mean_ms", "p95_ms", "cv"):
                assert float(row[key]) == getattr(s, key), key
            assert float(row["speedup_vs_fp32"]) == base.latency_at(s.batch_size).median_ms / s.median_ms
            assert float(row["top1"]) == r.accuracy.top1 and float(row["top5"]) == r.accuracy.top5
            assert float(row["top1_error"]) == r.accuracy.top1_error
            assert float(row["top5_error"]) == r.accuracy.top5_error
    for mode in skipped:
        assert by[(mode, "")]["skip_reason"] == result(root, mode).skip_reason


def test_json_reads_back_as_the_records(rendered):
    root, _ = rendered
    data = json.loads((root / "reports" / "report.json").read_text())
    assert [v["mode"] for v in data["variants"]] == ["fp32", *sorted(m for m in MODES if m != "fp32")]
    ok = ok_results(root)
    for v in data["variants"]:
        if v["mode"] not in ok:
            assert not v["ok"] and v["latency"] == []
            continue
        r = ok[v["mode"]]
        assert (v["top1"], v["top5"], v["top1_error"], v["top5_error"]) == (
            r.accuracy.top1, r.accuracy.top5, r.accuracy.top1_error, r.accuracy.top5_error
        )  # fmt: skip
        assert v["batch1_ms"] == r.latency_at(1).median_ms
        for row, s in zip(v["latency"], r.latency, strict=True):
            assert row["stats"]["median_ci_low_ms"] == s.median_ci_low_ms
            assert row["stats"]["median_ci_high_ms"] == s.median_ci_high_ms
            assert row["stats"]["median_ms"] == s.median_ms
    qat = next(v for v in data["variants"] if v["mode"] == "qat")
    assert qat["conversion"]["qat_history"] == [h.to_dict() for h in ok["qat"].variant.qat.history]


def test_markdown_and_latex_show_top5(rendered):
    root, written = rendered
    md = (root / "reports" / "report.md").read_text()
    tex = (root / "reports" / "report.tex").read_text()
    assert len(md) < 65536 and "| int8-ptq |" in md
    assert "| Top-1 | Top-5 |" in md and "Top-5 error" in md and "Top-5 error" in tex
    for r in ok_results(root).values():
        assert f"{r.accuracy.top5:.2f}%" in md and f"{r.accuracy.top5_error:.2f}" in tex
        assert f"{r.latency_at(1).median_ms:.2f}" in tex
    names = {p.name for p in written["figures"]}
    for stem in ("latency_vs_batch", "throughput_vs_batch", "accuracy_vs_size", "confusion", "training"):
        for ext in ("svg", "png", "pdf"):
            assert f"{stem}.{ext}" in names
    assert r"\includegraphics[width=0.9\linewidth]{\qbenchfigdir latency_vs_batch.pdf}" in tex


def test_latex_compiles_to_pdf(rendered, tmp_path):
    """pdflatex (Debian's TeX, installed by the set-up where missing) builds a PDF of the report."""
    from tests.reports.system_tools import compile_latex

    root, _ = rendered
    proc = compile_latex(root / "reports", tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    pdf = tmp_path / "main.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 10_000
    assert "Overfull" not in proc.stdout or "LaTeX Error" not in proc.stdout


def test_latex_escaping():
    from qbench.reports.fmt import latex

    assert latex("a_b & 50% #1 $x ~ {y}") == r"a\_b \& 50\% \#1 \$x \textasciitilde{} \{y\}"


def test_formats_and_bad_input(real_ws, tmp_path):
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
        write_reports(real_ws, ["text"], templates_dir=tmp_path / "missing")


def test_figures_follow_the_reports_asked_for(real_ws, tmp_path):
    """HTML alone: SVG and PNG (the page embeds the PNG), no PDF; LaTeX adds the PDF it includes."""
    html = write_reports(real_ws, ["html"], tmp_path / "html")
    assert {p.suffix for p in html["figures"]} == {".svg", ".png"}
    assert all(p.is_file() for p in html["figures"])
    assert not list((tmp_path / "html" / "figures").glob("*.pdf"))
    latex = write_reports(real_ws, ["latex"], tmp_path / "latex")
    assert {p.suffix for p in latex["figures"]} == {".svg", ".png", ".pdf"}
    tex = (tmp_path / "latex" / "report.tex").read_text()
    included = re.findall(r"qbenchfigdir ([\w.]+\.pdf)", tex)
    assert included and all((tmp_path / "latex" / "figures" / name).is_file() for name in included)


def test_missing_optional_records(real_ws, tmp_path):
    """No train.json, no variant.json: every field still prints, with its reason."""
    (real_ws / "baseline" / "train.json").unlink()
    shutil.rmtree(real_ws / "variants")
    written = write_reports(real_ws, ["text", "md", "csv", "json"], tmp_path / "out")
    text = (tmp_path / "out" / "int8-ptq.txt").read_text()
    assert "Optimizer: n/a (no training record" in text
    facts = result(real_ws, "int8-ptq").model
    assert f"Total Parameters: {facts.total_params:,}" in text  # from the result's model facts
    assert len(written["text"]) == len(MODES)


def test_undefined_variable_in_user_template_is_an_error(real_ws, tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "report.md.j2").write_text("{{ title }} {{ no_such_variable }}\n")
    with pytest.raises(QBenchError, match=r"report\.md\.j2 uses an undefined variable.*no_such_variable"):
        write_reports(real_ws, ["md"], tmp_path / "out", templates_dir=tpl)
    assert not (tmp_path / "out" / "report.md").exists()
    (tpl / "report.md.j2").write_text("{% for v in variants %}{{ v.nope }}{% endfor %}")
    with pytest.raises(QBenchError, match="undefined variable"):
        write_reports(real_ws, ["md"], tmp_path / "out", templates_dir=tpl)


def test_templates_override_takes_precedence(real_ws, tmp_path):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "report.md.j2").write_text(
        "CUSTOM {% for v in variants %}{{ v.mode }}={{ v.cells.top1 }};{% endfor %}\n"
    )
    write_reports(real_ws, ["md", "text"], tmp_path / "out", templates_dir=tpl)
    md = (tmp_path / "out" / "report.md").read_text()
    assert md.startswith(f"CUSTOM fp32={result(real_ws, 'fp32').accuracy.top1:.2f}%;fp16=")
    assert "1. EXPERIMENT METADATA" in (tmp_path / "out" / "fp32.txt").read_text()  # not overridden


def test_multi_source_labels_by_machine(real_ws, tmp_path):
    other = tmp_path / "runs" / "other"
    shutil.copytree(real_ws, other)
    for p in (other / "results").glob("*.json"):
        r = BenchResult.from_json(p)
        r.env = dataclasses.replace(
            r.env, hostname="edge-box", cpu=dataclasses.replace(r.env.cpu, model="ARM Neoverse-N1")
        )
        r.save_json(p)
    here = result(real_ws, "fp32").env.machine_label()
    sources = load_sources([real_ws, other / "results" / "int8-ptq.json", other / "results" / "fp32.json"])
    assert [s.label for s in sources] == [here, "ARM Neoverse-N1 (edge-box)"]
    ctx = build_context(sources)
    labels = [v.label for v in ctx.variants]
    assert "int8-ptq @ ARM Neoverse-N1 (edge-box)" in labels and len(labels) == len(MODES) + 2
    same = load_sources([real_ws, tmp_path / "runs" / "other"])
    assert same[0].label != same[1].label
    written = write_reports(sources, ["html", "text"], tmp_path / "cmp")
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert "ARM Neoverse-N1 (edge-box)" in html and here.split(" (")[0] in html
    assert len(written["text"]) == len(MODES) + 2


def test_cli_compare(real_ws, qbench_cli, tmp_path):
    proc = qbench_cli("compare", "--report", "md,csv", "--runs-dir", str(real_ws.parent))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        str(real_ws / "reports" / "report.md"),
        str(real_ws / "reports" / "report.csv"),
    ]
    proc = qbench_cli("compare", "--report", "nope", "--runs-dir", str(real_ws.parent))
    assert proc.returncode == 2 and "unknown report format" in proc.stderr and "Traceback" not in proc.stderr
    proc = qbench_cli("compare", "--runs-dir", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and "no results" in proc.stderr
    proc = qbench_cli("compare", str(real_ws), "--report", "json", "--out", str(tmp_path / "o"))
    assert proc.returncode == 0 and re.search(r"report\.json$", proc.stdout.strip())
