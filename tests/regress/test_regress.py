"""qbench regress on real records: a real tiny-cnn bench, its BenchResult transformed per case.

The timing of each case is set by replacing the real record's samples with fixed-seed
log-normal samples run through the harness's own statistics (``stats.latency_stats``), so
the verdicts are deterministic while every other part of the record (model, variant,
environment, accuracy, settings) is what ``qbench bench`` really writes.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qbench.errors import QBenchError
from qbench.harness.stats import latency_stats
from qbench.records import BenchOptions, BenchResult, GpuInfo, RecordError
from qbench.regress import (
    IMPROVED,
    MISSING,
    NOISY,
    OK,
    REGRESSION,
    RegressBaseline,
    RegressOptions,
    ResultSet,
    compare,
    load_results,
    parse_threshold,
    save_baseline,
)
from qbench.workspace import Workspace

BATCHES = (1, 8)
OTHER_CPU = "AMD EPYC 7763 64-Core Processor"


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch):
    """Keep a CI runner's GITHUB_STEP_SUMMARY out of the tests (the subprocesses inherit os.environ)."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture(scope="module")
def real_ws(tiny_baseline_root, tmp_path_factory) -> Path:
    """A tiny-cnn workspace benched for real (fp32 at batch 1 and 8, with accuracy), once per module."""
    from qbench.pipeline import bench

    root = tmp_path_factory.mktemp("regress-real") / "default"
    shutil.copytree(tiny_baseline_root, root)
    options = BenchOptions(batch_sizes=list(BATCHES), warmup=2, iters=30, threads=1, isolate=False)
    (result,) = bench(Workspace(root), options)
    assert result.ok, result.notes
    return root


@pytest.fixture
def real(real_ws):
    """real(mode=..., ...) -> a fresh copy of the real fp32 record, transformed (see ``transform``)."""

    def make(mode: str = "fp32", **changes) -> BenchResult:
        return transform(BenchResult.from_json(Workspace(real_ws).result_path("fp32")), mode, **changes)

    return make


def samples(seed: int, median_ms: float, spread: float, n: int = 100) -> list[float]:
    """Log-normal timing samples: ``spread`` is sigma of log(ms) (0.02 tight, 1.0 very noisy)."""
    rng = np.random.default_rng(seed)
    return list(median_ms * np.exp(rng.normal(0.0, spread, n)))


def transform(
    result: BenchResult,
    mode: str = "fp32",
    *,
    seed: int = 0,
    scale: float = 1.0,
    spread: float = 0.02,
    n: int = 100,
    top1: float | None = None,
    cpu: str | None = None,
    gpu: str | None = None,
    keep_samples: bool = True,
) -> BenchResult:
    """The real record as mode ``mode``, its timing around 2 ms x batch x ``scale``."""
    latency = []
    for i, measured in enumerate(result.latency):
        b = measured.batch_size
        s = samples(seed * 100 + i, 2.0 * b * scale, spread, n)
        stats = latency_stats(
            s, b, total_s=sum(s) / 1000.0, cold_ms=measured.cold_ms, warmup_iters=measured.warmup_iters
        )
        if not keep_samples:
            stats.samples_ms = []
        latency.append(stats)
    result = dataclasses.replace(result, mode=mode, latency=latency)
    if result.variant is not None:
        result.variant = dataclasses.replace(result.variant, mode=mode)
    if top1 is not None:
        result.accuracy = dataclasses.replace(result.accuracy, top1=top1)
    env = result.env
    if cpu is not None:
        env = dataclasses.replace(env, cpu=dataclasses.replace(env.cpu, model=cpu))
    if gpu is not None:
        env = dataclasses.replace(env, gpus=[GpuInfo(index=0, name=gpu, memory_gb=80.0, capability="9.0")])
        result.device = "cuda"
    result.env = env
    return result


def not_run(result: BenchResult, mode: str, reason: str = "no CUDA device") -> BenchResult:
    """The record of a variant skipped here, as bench_variant writes it (no latency, no env)."""
    return dataclasses.replace(
        result, mode=mode, status="skipped", skip_reason=reason, latency=[], env=None, accuracy=None
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


# ---------------------------------------------------------------------------------------------
# the comparison itself


def test_identical_runs_pass(real):
    report = compare(side(real()), side(real()), RegressOptions())
    assert report.passed and report.exit_code == 0
    assert set(verdicts(report).values()) == {OK}
    assert all(r.change_pct == 0 for r in report.rows)


def test_the_real_records_compare_with_themselves(real_ws):
    """The untransformed records of the real bench: every batch size and top-1 compared, all equal."""
    report = compare(load_results(real_ws), load_results(real_ws / "results"), RegressOptions())
    # a loaded machine may mark the real samples noisy: that is a note, never a failure
    assert set(verdicts(report)) == {("fp32", 1), ("fp32", 8), ("fp32", None)}
    assert set(verdicts(report).values()) <= {OK, NOISY} and report.passed
    assert all(r.change_pct == 0 for r in report.rows) and not report.warnings


def test_ratio_is_current_median_over_baseline_median(real):
    """The reports' definition: a ratio of medians (with repeats, of the medians of run medians)."""
    base, cur = real(seed=1), real(seed=2, scale=1.3)
    report = compare(side(base), side(cur), RegressOptions())
    for row in report.rows:
        if row.batch_size is not None:
            expected = cur.latency_at(row.batch_size).median_ms / base.latency_at(row.batch_size).median_ms
            assert row.ratio == pytest.approx(expected)
            assert row.change_pct == pytest.approx((expected - 1) * 100)
    assert report.to_dict()["rows"][0]["ratio"] == pytest.approx(report.rows[0].ratio)


def test_same_distribution_other_seed_passes(real):
    report = compare(side(real(seed=1)), side(real(seed=2)), RegressOptions())
    assert report.passed, report.rows


def test_tight_30pct_slowdown_is_a_regression(real):
    report = compare(side(real(seed=1)), side(real(seed=2, scale=1.3)), RegressOptions())
    latency_rows = [r for r in report.rows if r.batch_size is not None]
    assert all(r.verdict == REGRESSION for r in latency_rows)
    assert all(25 < r.change_pct < 35 and r.p_value < 1e-6 for r in latency_rows)
    assert not report.passed and report.exit_code == 1
    assert report.verdict_line().startswith("FAIL: 2 regression(s)")


def test_noisy_30pct_slowdown_is_not_significant(real):
    # the same noise pattern scaled by 1.3: every quantile is exactly 30 % slower, yet with a spread
    # of sigma 1 and 30 samples a rank test cannot tell it from chance
    base, cur = real(seed=1, spread=1.0, n=30), real(seed=1, spread=1.0, n=30, scale=1.3)
    report = compare(side(base), side(cur), RegressOptions())
    latency_rows = [r for r in report.rows if r.batch_size is not None]
    # the threshold alone would flag these: only the significance test keeps them out
    assert all(abs(r.change_pct) > 10 for r in latency_rows)
    assert all(r.p_value >= 0.01 for r in latency_rows)
    assert all(r.verdict == NOISY for r in latency_rows)
    assert report.passed


def test_without_samples_the_threshold_decides(real):
    base, cur = real(seed=1, keep_samples=False), real(seed=2, scale=1.3, keep_samples=False)
    report = compare(side(base), side(cur), RegressOptions())
    row = report.rows[0]
    assert row.verdict == REGRESSION and row.p_value is None and "threshold only" in row.note


def test_improvement_is_reported(real):
    report = compare(side(real(seed=1)), side(real(seed=2, scale=0.7)), RegressOptions())
    assert verdicts(report)[("fp32", 1)] == IMPROVED
    assert report.passed
    assert "2 improved" in report.verdict_line()


def test_throughput_metric_flags_slowdown(real):
    report = compare(side(real(seed=1)), side(real(seed=2, scale=1.3)), RegressOptions(metric="throughput"))
    row = report.rows[0]
    assert row.metric == "throughput img/s" and row.verdict == REGRESSION and row.change_pct < -20


def test_min_abs_ms_floor(real):
    # 30 % slower, but 2 ms -> 2.6 ms at batch 1 is under a 1 ms floor; batch 8 (16 -> 20.8 ms) is not
    opts = RegressOptions(min_abs_ms=1.0)
    report = compare(side(real(seed=1)), side(real(seed=2, scale=1.3)), opts)
    assert verdicts(report)[("fp32", 1)] == OK
    assert verdicts(report)[("fp32", 8)] == REGRESSION


def test_accuracy_drop_gate(real):
    report = compare(side(real(top1=97.5)), side(real(top1=96.5)), RegressOptions())
    assert verdicts(report)[("fp32", None)] == REGRESSION and not report.passed
    assert "dropped 1.00 pp" in report.rows[-1].note
    small = compare(side(real(top1=97.5)), side(real(top1=97.2)), RegressOptions())
    assert small.passed
    loose = compare(side(real(top1=97.5)), side(real(top1=96.5)), RegressOptions(max_accuracy_drop=2))
    assert loose.passed


def test_missing_pairs_are_reported_not_failed(real):
    base = side(real("fp32"), real("onnx", seed=3))
    cur = side(real("fp32"), real("int8-ptq", seed=4))
    report = compare(base, cur, RegressOptions())
    v = verdicts(report)
    assert v[("onnx", None)] == MISSING and v[("int8-ptq", None)] == MISSING
    notes = {r.variant: r.note for r in report.rows if r.verdict == MISSING}
    assert notes == {"onnx": "not in current", "int8-ptq": "not in baseline"}
    assert report.passed


def test_no_overlap_is_an_input_error(real):
    with pytest.raises(QBenchError, match="share no measured variant"):
        compare(side(real("fp32")), side(real("onnx")), RegressOptions())


def test_noisy_measurement_is_marked(real):
    base = real(seed=1)
    base.latency[0].noisy = True
    report = compare(side(base), side(real(seed=2)), RegressOptions())
    row = report.rows[0]
    assert row.verdict == NOISY and "noisy baseline" in row.note


def test_machine_mismatch_warns(real):
    report = compare(side(real()), side(real(cpu=OTHER_CPU)), RegressOptions())
    assert len(report.warnings) == 1 and "AMD EPYC" in report.warnings[0]
    gpu = compare(
        side(real(gpu="NVIDIA A100")),
        side(real(gpu="NVIDIA H100 80GB HBM3")),
        RegressOptions(),
    )
    assert gpu.warnings and "H100" in gpu.warnings[0]
    assert not compare(side(real()), side(real()), RegressOptions()).warnings


def test_other_library_versions_on_one_machine_warn(real):
    """The environment's fingerprint covers library versions: the warning names the one that moved."""
    cur = real()
    cur.env = dataclasses.replace(cur.env, libraries={**cur.env.libraries, "torch": "0.0.1"})
    (warning,) = compare(side(real()), side(cur), RegressOptions()).warnings
    assert "other settings" in warning and "-> 0.0.1" in warning and "not comparable" in warning


@pytest.mark.parametrize(
    ("text", "value"),
    [("10%", 0.10), ("0.1", 0.1), ("5 %", 0.05), ("150%", 1.5), ("0", 0.0), ("1", 1.0)],
)
def test_threshold_parsing(text, value):
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "why"), [("10", "ambiguous"), ("ten", "not a number"), ("-5%", "non-negative")]
)
def test_threshold_parsing_rejects(text, why):
    with pytest.raises(QBenchError, match=why):
        parse_threshold(text)


def test_options_validate():
    with pytest.raises(QBenchError, match="alpha"):
        RegressOptions(alpha=0)
    with pytest.raises(QBenchError, match="metric"):
        RegressOptions(metric="p99")


# ---------------------------------------------------------------------------------------------
# loading every kind of PATH, and the saved baseline


def test_load_every_kind_of_path(tmp_path, real):
    root = write_results(
        tmp_path / "ws", real("onnx", seed=3), real("fp32"), not_run(real(), "tensorrt-fp16")
    )
    for path in (root, root / "results"):
        assert list(load_results(path).results) == ["fp32", "onnx", "tensorrt-fp16"]
    assert list(load_results(root / "results" / "onnx.json").results) == ["onnx"]
    recorded = load_results(root)
    assert list(recorded.ok()) == ["fp32", "onnx"]
    assert recorded.results["tensorrt-fp16"].status == "skipped"


def test_save_baseline_round_trip(tmp_path, real_ws, real):
    shutil.copytree(real_ws, tmp_path / "ws")
    write_results(tmp_path / "ws", not_run(real(), "tensorrt-fp16"))
    original = load_results(tmp_path / "ws")
    path = save_baseline(original, tmp_path / "baseline.json")
    saved = RegressBaseline.from_json(path)
    assert saved.kind == "qbench-regress-baseline" and saved.source == str(tmp_path / "ws")
    assert json.loads(path.read_text())["schema_version"] == 2
    again = load_results(path)
    assert list(again.results) == ["fp32", "tensorrt-fp16"]
    assert [r.to_dict() for r in again.results.values()] == [r.to_dict() for r in original.results.values()]


def test_wrong_typed_latency_entry_is_refused(tmp_path, real):
    """A record whose latency holds a string where the writer puts a number: a one-sentence input error."""
    data = real().to_dict()
    data["latency"][0]["median_ms"] = "fast"
    bad = Workspace(tmp_path / "ws").result_path("fp32")
    bad.parent.mkdir(parents=True)
    bad.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=r"latency\[0\]\.median_ms is str 'fast', expected a number"):
        load_results(tmp_path / "ws")
    assert issubclass(RecordError, QBenchError)  # the CLI's exit status 2
    saved = save_baseline(side(real()), tmp_path / "baseline.json")
    data = json.loads(saved.read_text())
    data["results"][0]["latency"][1]["n_samples"] = 2.5
    saved.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=r"results\[0\]\.latency\[1\]\.n_samples is float"):
        load_results(saved)


# ---------------------------------------------------------------------------------------------
# the real CLI


def test_cli_identical_runs_pass(qbench_cli, tmp_path, real):
    write_results(tmp_path / "runs" / "default", real())
    base = write_results(tmp_path / "base", real())
    proc = qbench_cli("regress", "--baseline", str(base), "--json", "verdict.json")
    assert proc.returncode == 0, proc.stderr
    assert "PASS" in proc.stdout and "REGRESSION" not in proc.stdout
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["passed"] is True and verdict["exit_code"] == 0 and verdict["counts"]["ok"] == 3


def test_cli_tight_slowdown_fails_with_summary(qbench_cli, tmp_path, monkeypatch, real):
    base = write_results(tmp_path / "base", real(seed=1))
    cur = write_results(tmp_path / "cur", real(seed=2, scale=1.3))
    step = tmp_path / "step-summary.md"
    step.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    proc = qbench_cli(
        "regress",
        "--baseline",
        str(base / "results" / "fp32.json"),
        "--current",
        str(cur),
        "--summary-md",
        "summary.md",
        "--json",
        "verdict.json",
    )
    assert proc.returncode == 1, proc.stderr
    assert "REGRESSION" in proc.stdout and "FAIL: 2 regression(s)" in proc.stdout
    summary = (tmp_path / "summary.md").read_text()
    assert "qbench regress: FAIL" in summary and "| fp32 | 1 | median ms |" in summary
    assert step.read_text() == "earlier step\n" + summary + "\n"  # appended, not overwritten
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["passed"] is False and verdict["counts"]["REGRESSION"] == 2
    assert {r["verdict"] for r in verdict["rows"] if r["batch_size"]} == {"REGRESSION"}


def test_cli_corrupt_baseline(qbench_cli, tmp_path, real):
    write_results(tmp_path / "runs" / "default", real())
    (tmp_path / "baseline.json").write_text("{not json")
    proc = qbench_cli("regress", "--baseline", "baseline.json")
    assert proc.returncode == 2
    assert proc.stderr.startswith("qbench regress: error: baseline baseline.json is not valid JSON")
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""


def regress(tmp_path, monkeypatch, capsys, *args: str):
    """``qbench regress ARGS`` through the CLI's own main() in this process (the subprocess tests above
    cover the console script; this keeps the many cases fast): (exit status, stdout, stderr)."""
    from qbench.cli.main import main

    monkeypatch.chdir(tmp_path)
    code = main(["regress", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_noisy_slowdown_passes(tmp_path, monkeypatch, capsys, real):
    base = write_results(tmp_path / "base", real(seed=1, spread=1.0, n=30))
    cur = write_results(tmp_path / "cur", real(seed=1, spread=1.0, n=30, scale=1.3))
    code, out, err = regress(tmp_path, monkeypatch, capsys, "--baseline", str(base), "--current", str(cur))
    assert code == 0, out + err
    assert "noisy" in out and "not significant" in out and "PASS" in out


def test_cli_improvement_and_throughput(tmp_path, monkeypatch, capsys, real):
    base = write_results(tmp_path / "base", real(seed=1))
    cur = write_results(tmp_path / "cur", real(seed=2, scale=0.7))
    args = ("--baseline", str(base), "--current", str(cur), "--metric", "throughput", "--threshold", "0.2")
    code, out, _ = regress(tmp_path, monkeypatch, capsys, *args)
    assert code == 0 and "improved" in out and "throughput img/s" in out and "threshold 20%" in out


def test_cli_accuracy_drop_fails(tmp_path, monkeypatch, capsys, real):
    base = write_results(tmp_path / "base", real(top1=97.5))
    cur = write_results(tmp_path / "cur", real(top1=95.0))
    code, out, _ = regress(tmp_path, monkeypatch, capsys, "--baseline", str(base), "--current", str(cur))
    assert code == 1 and "top-1 dropped 2.50 pp" in out
    code, _, _ = regress(
        tmp_path,
        monkeypatch,
        capsys,
        "--baseline",
        str(base),
        "--current",
        str(cur),
        "--max-accuracy-drop",
        "3",
    )
    assert code == 0


def test_cli_machine_mismatch_warns_and_strict_fails(tmp_path, monkeypatch, capsys, real):
    base = write_results(tmp_path / "base", real())
    cur = write_results(tmp_path / "cur", real(cpu=OTHER_CPU))
    code, out, _ = regress(tmp_path, monkeypatch, capsys, "--baseline", str(base), "--current", str(cur))
    assert code == 0
    assert "warning:" in out and "AMD EPYC" in out
    code, out, err = regress(
        tmp_path, monkeypatch, capsys, "--baseline", str(base), "--current", str(cur), "--strict-machine"
    )
    assert code == 2 and out == ""
    assert err.startswith("qbench regress: error: baseline was measured on") and "not comparable" in err
    assert err.count("\n") == 1


def test_cli_bad_inputs(tmp_path, monkeypatch, capsys, real):
    write_results(tmp_path / "runs" / "default", real("fp32"))
    base = write_results(tmp_path / "base", real("onnx"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "not-a-record.json").write_text('{"schema_version": 2, "hello": 2}')
    (tmp_path / "older.json").write_text('{"schema_version": 1, "mode": "fp32"}')
    (tmp_path / "future.json").write_text('{"schema_version": 99, "results": []}')
    data = real().to_dict()
    data["latency"][0]["median_ms"] = "fast"
    (tmp_path / "wrong-type.json").write_text(json.dumps(data))
    for args, message in [
        (("--baseline", "nowhere.json"), "does not exist"),
        (("--baseline", "not-a-record.json"), "unknown field(s) hello for a BenchResult"),
        (("--baseline", "older.json"), "schema_version 1 (an older qbench wrote it"),
        (("--baseline", "future.json"), "schema_version 99"),
        (("--baseline", "wrong-type.json"), "latency[0].median_ms is str 'fast', expected a number"),
        (("--baseline", "empty"), "no results in empty/results"),
        (("--baseline", str(base)), "share no measured variant"),
        (("--baseline", str(base), "--threshold", "ten"), "--threshold"),
        (("--baseline", str(base), "--threshold", "10"), "ambiguous"),
        (("--baseline", str(base), "--alpha", "1.5"), "--alpha"),
        (("--baseline", str(base), "--current", "empty"), "no results in empty/results"),
        (("--baseline", str(base), "--exp", "other"), "no results in"),
        ((), "give --baseline"),
    ]:
        code, _, err = regress(tmp_path, monkeypatch, capsys, *args)
        assert code == 2 and message in err, (args, err)
        assert err.startswith("qbench regress: error: ") and err.count("\n") == 1, err


def test_cli_save_baseline_round_trip(tmp_path, monkeypatch, capsys, real_ws, real):
    shutil.copytree(real_ws, tmp_path / "runs" / "default")
    write_results(tmp_path / "runs" / "default", not_run(real(), "tensorrt-fp16"))
    code, out, err = regress(tmp_path, monkeypatch, capsys, "--save-baseline", "baseline-results.json")
    assert code == 0 and "baseline saved" in out, err
    saved = RegressBaseline.from_json(tmp_path / "baseline-results.json")
    assert [r.mode for r in saved.results] == ["fp32", "tensorrt-fp16"]
    code, out, err = regress(
        tmp_path, monkeypatch, capsys, "--baseline", "baseline-results.json", "--json", "v.json"
    )
    assert code == 0, err
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["counts"]["REGRESSION"] == 0
    assert verdict["counts"]["missing"] == 1  # tensorrt-fp16 was skipped on both sides
    # compare and save in one call: the saved file is the current side
    cur = write_results(tmp_path / "cur", real(seed=2))
    code, _, _ = regress(
        tmp_path,
        monkeypatch,
        capsys,
        "--baseline",
        str(real_ws),
        "--current",
        str(cur),
        "--save-baseline",
        "next.json",
    )
    assert list(load_results(tmp_path / "next.json").results) == ["fp32"]
    assert load_results(tmp_path / "next.json").results["fp32"] == load_results(cur).results["fp32"]
