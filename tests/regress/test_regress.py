"""qbench regress: records built from fixed-seed sample distributions, the real CLI in subprocesses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qbench.errors import QBenchError
from qbench.harness.result import AccuracyStats, BenchResult
from qbench.harness.stats import latency_stats
from qbench.regress import (
    IMPROVED,
    MISSING,
    NOISY,
    OK,
    REGRESSION,
    RegressOptions,
    ResultSet,
    compare,
    load_results,
    parse_threshold,
    save_baseline,
)
from qbench.workspace import Workspace

FIXTURE_WS = Path(__file__).resolve().parents[1] / "reports" / "fixtures" / "ws"
CPU = "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"
BATCHES = (1, 8)


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch):
    """Keep a CI runner's GITHUB_STEP_SUMMARY out of the tests (the subprocesses inherit os.environ)."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def samples(seed: int, median_ms: float, spread: float, n: int = 100) -> list[float]:
    """Log-normal timing samples: ``spread`` is sigma of log(ms) (0.02 tight, 1.0 very noisy)."""
    rng = np.random.default_rng(seed)
    return list(median_ms * np.exp(rng.normal(0.0, spread, n)))


def record(
    mode: str = "fp32",
    *,
    seed: int = 0,
    scale: float = 1.0,
    spread: float = 0.02,
    n: int = 100,
    top1: float = 97.5,
    cpu: str = CPU,
    device: str = "cpu",
    gpu: str | None = None,
    keep_samples: bool = True,
) -> BenchResult:
    latency = []
    for i, b in enumerate(BATCHES):
        s = samples(seed * 100 + i, 2.0 * b * scale, spread, n)
        stats = latency_stats(s, b, total_s=sum(s) / 1000.0)
        if not keep_samples:
            stats.samples_ms = []
        latency.append(stats)
    env = {"cpu": {"model": cpu}, "gpus": [{"name": gpu}] if gpu else []}
    return BenchResult(
        mode=mode,
        status="ok",
        device=device,
        latency=latency,
        accuracy=AccuracyStats(n_images=360, top1=top1, top5=100.0, loss=0.1),
        env=env,
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


def test_identical_runs_pass():
    report = compare(side(record()), side(record()), RegressOptions())
    assert report.passed and report.exit_code == 0
    assert set(verdicts(report).values()) == {OK}
    assert all(r.change_pct == 0 for r in report.rows)


def test_same_distribution_other_seed_passes():
    report = compare(side(record(seed=1)), side(record(seed=2)), RegressOptions())
    assert report.passed, report.rows


def test_tight_30pct_slowdown_is_a_regression():
    report = compare(side(record(seed=1)), side(record(seed=2, scale=1.3)), RegressOptions())
    latency_rows = [r for r in report.rows if r.batch_size is not None]
    assert all(r.verdict == REGRESSION for r in latency_rows)
    assert all(25 < r.change_pct < 35 and r.p_value < 1e-6 for r in latency_rows)
    assert not report.passed and report.exit_code == 1
    assert report.verdict_line().startswith("FAIL: 2 regression(s)")


def test_noisy_30pct_slowdown_is_not_significant():
    # the same noise pattern scaled by 1.3: every quantile is exactly 30 % slower, yet with a spread
    # of sigma 1 and 30 samples a rank test cannot tell it from chance
    base, cur = record(seed=1, spread=1.0, n=30), record(seed=1, spread=1.0, n=30, scale=1.3)
    report = compare(side(base), side(cur), RegressOptions())
    latency_rows = [r for r in report.rows if r.batch_size is not None]
    # the threshold alone would flag these: only the significance test keeps them out
    assert all(abs(r.change_pct) > 10 for r in latency_rows)
    assert all(r.p_value >= 0.01 for r in latency_rows)
    assert all(r.verdict == NOISY for r in latency_rows)
    assert report.passed


def test_without_samples_the_threshold_decides():
    base, cur = record(seed=1, keep_samples=False), record(seed=2, scale=1.3, keep_samples=False)
    report = compare(side(base), side(cur), RegressOptions())
    row = report.rows[0]
    assert row.verdict == REGRESSION and row.p_value is None and "threshold only" in row.note


def test_improvement_is_reported():
    report = compare(side(record(seed=1)), side(record(seed=2, scale=0.7)), RegressOptions())
    assert verdicts(report)[("fp32", 1)] == IMPROVED
    assert report.passed
    assert "2 improved" in report.verdict_line()


def test_throughput_metric_flags_slowdown():
    report = compare(
        side(record(seed=1)), side(record(seed=2, scale=1.3)), RegressOptions(metric="throughput")
    )
    row = report.rows[0]
    assert row.metric == "throughput img/s" and row.verdict == REGRESSION and row.change_pct < -20


def test_min_abs_ms_floor():
    # 30 % slower, but 2 ms -> 2.6 ms at batch 1 is under a 1 ms floor; batch 8 (16 -> 20.8 ms) is not
    opts = RegressOptions(min_abs_ms=1.0)
    report = compare(side(record(seed=1)), side(record(seed=2, scale=1.3)), opts)
    assert verdicts(report)[("fp32", 1)] == OK
    assert verdicts(report)[("fp32", 8)] == REGRESSION


def test_accuracy_drop_gate():
    report = compare(side(record(top1=97.5)), side(record(top1=96.5)), RegressOptions())
    assert verdicts(report)[("fp32", None)] == REGRESSION and not report.passed
    assert "dropped 1.00 pp" in report.rows[-1].note
    small = compare(side(record(top1=97.5)), side(record(top1=97.2)), RegressOptions())
    assert small.passed
    loose = compare(side(record(top1=97.5)), side(record(top1=96.5)), RegressOptions(max_accuracy_drop=2))
    assert loose.passed


def test_missing_pairs_are_reported_not_failed():
    base = side(record("fp32"), record("onnx", seed=3))
    cur = side(record("fp32"), record("int8-ptq", seed=4))
    report = compare(base, cur, RegressOptions())
    v = verdicts(report)
    assert v[("onnx", None)] == MISSING and v[("int8-ptq", None)] == MISSING
    notes = {r.variant: r.note for r in report.rows if r.verdict == MISSING}
    assert notes == {"onnx": "not in current", "int8-ptq": "not in baseline"}
    assert report.passed


def test_no_overlap_is_an_input_error():
    with pytest.raises(QBenchError, match="share no measured variant"):
        compare(side(record("fp32")), side(record("onnx")), RegressOptions())


def test_noisy_measurement_is_marked():
    base = record(seed=1)
    base.latency[0].noisy = True
    report = compare(side(base), side(record(seed=2)), RegressOptions())
    row = report.rows[0]
    assert row.verdict == NOISY and "noisy baseline" in row.note


def test_machine_mismatch_warns():
    report = compare(side(record()), side(record(cpu="AMD EPYC 7763 64-Core Processor")), RegressOptions())
    assert len(report.warnings) == 1 and "AMD EPYC" in report.warnings[0]
    gpu = compare(
        side(record(device="cuda", gpu="NVIDIA A100")),
        side(record(device="cuda", gpu="NVIDIA H100 80GB HBM3")),
        RegressOptions(),
    )
    assert gpu.warnings and "H100" in gpu.warnings[0]
    assert not compare(side(record()), side(record()), RegressOptions()).warnings


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


def test_load_every_kind_of_path(tmp_path):
    root = write_results(tmp_path / "ws", record("fp32"), record("onnx", seed=3))
    for path in (root, root / "results"):
        assert list(load_results(path).results) == ["fp32", "onnx"]
    assert list(load_results(root / "results" / "onnx.json").results) == ["onnx"]
    recorded = load_results(FIXTURE_WS)
    assert list(recorded.ok()) == ["fp32", "int8-ptq", "onnx", "qat"]
    assert recorded.results["tensorrt-fp16"].status == "skipped"


def test_save_baseline_round_trip(tmp_path):
    original = load_results(FIXTURE_WS)
    path = save_baseline(original, tmp_path / "baseline.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and data["kind"] == "qbench-regress-baseline"
    again = load_results(path)
    assert list(again.results) == list(original.results)
    assert [r.to_dict() for r in again.results.values()] == [r.to_dict() for r in original.results.values()]


# ---------------------------------------------------------------------------------------------
# the real CLI


def test_cli_identical_runs_pass(qbench_cli, tmp_path):
    write_results(tmp_path / "runs" / "default", record())
    base = write_results(tmp_path / "base", record())
    proc = qbench_cli("regress", "--baseline", str(base), "--json", "verdict.json")
    assert proc.returncode == 0, proc.stderr
    assert "PASS" in proc.stdout and "REGRESSION" not in proc.stdout
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["passed"] is True and verdict["exit_code"] == 0 and verdict["counts"]["ok"] == 3


def test_cli_tight_slowdown_fails_with_summary(qbench_cli, tmp_path, monkeypatch):
    base = write_results(tmp_path / "base", record(seed=1))
    cur = write_results(tmp_path / "cur", record(seed=2, scale=1.3))
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


def test_cli_corrupt_baseline(qbench_cli, tmp_path):
    write_results(tmp_path / "runs" / "default", record())
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


def test_cli_noisy_slowdown_passes(tmp_path, monkeypatch, capsys):
    base = write_results(tmp_path / "base", record(seed=1, spread=1.0, n=30))
    cur = write_results(tmp_path / "cur", record(seed=1, spread=1.0, n=30, scale=1.3))
    code, out, err = regress(tmp_path, monkeypatch, capsys, "--baseline", str(base), "--current", str(cur))
    assert code == 0, out + err
    assert "noisy" in out and "not significant" in out and "PASS" in out


def test_cli_improvement_and_throughput(tmp_path, monkeypatch, capsys):
    base = write_results(tmp_path / "base", record(seed=1))
    cur = write_results(tmp_path / "cur", record(seed=2, scale=0.7))
    args = ("--baseline", str(base), "--current", str(cur), "--metric", "throughput", "--threshold", "0.2")
    code, out, _ = regress(tmp_path, monkeypatch, capsys, *args)
    assert code == 0 and "improved" in out and "throughput img/s" in out and "threshold 20%" in out


def test_cli_accuracy_drop_fails(tmp_path, monkeypatch, capsys):
    base = write_results(tmp_path / "base", record(top1=97.5))
    cur = write_results(tmp_path / "cur", record(top1=95.0))
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


def test_cli_machine_mismatch_warns_and_strict_fails(tmp_path, monkeypatch, capsys):
    base = write_results(tmp_path / "base", record())
    cur = write_results(tmp_path / "cur", record(cpu="AMD EPYC 7763 64-Core Processor"))
    code, out, _ = regress(tmp_path, monkeypatch, capsys, "--baseline", str(base), "--current", str(cur))
    assert code == 0
    assert "warning:" in out and "AMD EPYC" in out
    code, out, err = regress(
        tmp_path, monkeypatch, capsys, "--baseline", str(base), "--current", str(cur), "--strict-machine"
    )
    assert code == 2 and out == ""
    assert err.startswith("qbench regress: error: baseline was measured on") and "not comparable" in err
    assert err.count("\n") == 1


def test_cli_bad_inputs(tmp_path, monkeypatch, capsys):
    write_results(tmp_path / "runs" / "default", record("fp32"))
    base = write_results(tmp_path / "base", record("onnx"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "not-a-record.json").write_text('{"schema_version": 1, "hello": 2}')
    (tmp_path / "future.json").write_text('{"schema_version": 99, "results": []}')
    for args, message in [
        (("--baseline", "nowhere.json"), "does not exist"),
        (("--baseline", "not-a-record.json"), "not a qbench result record"),
        (("--baseline", "future.json"), "schema_version 99"),
        (("--baseline", "empty"), "holds no results JSON"),
        (("--baseline", str(base)), "share no measured variant"),
        (("--baseline", str(base), "--threshold", "ten"), "--threshold"),
        (("--baseline", str(base), "--threshold", "10"), "ambiguous"),
        (("--baseline", str(base), "--alpha", "1.5"), "--alpha"),
        (("--baseline", str(base), "--current", "empty"), "holds no results JSON"),
        (("--baseline", str(base), "--exp", "other"), "no results in"),
        ((), "give --baseline"),
    ]:
        code, _, err = regress(tmp_path, monkeypatch, capsys, *args)
        assert code == 2 and message in err, (args, err)
        assert err.startswith("qbench regress: error: ") and err.count("\n") == 1, err


def test_cli_save_baseline_round_trip(tmp_path, monkeypatch, capsys):
    shutil.copytree(FIXTURE_WS, tmp_path / "runs" / "default")
    code, out, err = regress(tmp_path, monkeypatch, capsys, "--save-baseline", "baseline-results.json")
    assert code == 0 and "baseline saved" in out, err
    saved = json.loads((tmp_path / "baseline-results.json").read_text())
    assert saved["schema_version"] == 1 and len(saved["results"]) == 5
    code, out, err = regress(
        tmp_path, monkeypatch, capsys, "--baseline", "baseline-results.json", "--json", "v.json"
    )
    assert code == 0, err
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert verdict["counts"]["REGRESSION"] == 0
    assert verdict["counts"]["missing"] == 1  # tensorrt-fp16 was skipped on both sides
    # compare and save in one call: the saved file is the current side
    cur = write_results(tmp_path / "cur", record(seed=2))
    code, _, _ = regress(
        tmp_path,
        monkeypatch,
        capsys,
        "--baseline",
        str(FIXTURE_WS),
        "--current",
        str(cur),
        "--save-baseline",
        "next.json",
    )
    assert list(load_results(tmp_path / "next.json").results) == ["fp32"]
