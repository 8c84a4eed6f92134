"""What fails the gate besides a slowdown, what is bad input, and every output, through the real CLI."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET

import pytest
from regress_records import not_run, side, verdicts, write_results

from qbench.errors import QBenchError
from qbench.records import RecordError
from qbench.regress import (
    MISSING,
    NOT_COMPARED,
    REGRESSION,
    RegressBaseline,
    RegressOptions,
    compare,
    load_results,
    save_baseline,
)

OTHER_CPU = "AMD EPYC 7763 64-Core Processor"
TIGHT, SLOW = [1.0, 1.01, 0.99, 1.0], [1.3, 1.31, 1.29, 1.3]


@pytest.mark.parametrize(
    ("status", "reason"), [("failed", "worker exited with status 7"), ("skipped", "no CUDA")]
)
def test_baseline_variant_not_ok_now_fails_unless_allowed(real, status, reason):
    base = side(real("fp32"), real("onnx", seed=3))
    cur = side(real("fp32"), not_run(real(), "onnx", status, reason))
    report = compare(base, cur, RegressOptions())
    assert verdicts(report)[("onnx", None)] == MISSING and report.exit_code == 1
    assert f"onnx (variant) {status} in current ({reason})" in report.verdict_line()
    assert compare(base, cur, RegressOptions(allow_missing=True)).passed


def test_absent_variant_and_batch_size_fail_new_ones_do_not(real):
    cur_fp32 = real("fp32")
    cur_fp32.latency = cur_fp32.latency[:1]  # batch 8 not measured now
    report = compare(side(real("fp32"), real("onnx")), side(cur_fp32, real("int8-ptq")), RegressOptions())
    v = verdicts(report)
    assert (v[("onnx", None)], v[("fp32", 8)], v[("int8-ptq", None)]) == (MISSING, MISSING, NOT_COMPARED)
    assert len(report.failures()) == 2


def test_accuracy_gate(real):
    report = compare(side(real(top1=97.5)), side(real(top1=96.5)), RegressOptions())
    assert verdicts(report)[("fp32", None)] == REGRESSION and "dropped 1.00 pp" in report.rows[-1].note
    assert compare(side(real(top1=97.5)), side(real(top1=97.2)), RegressOptions()).passed
    with pytest.raises(QBenchError, match=r"no top-1 for fp32 \(current\).*--no-accuracy-gate"):
        compare(side(real()), side(real(accuracy=False)), RegressOptions())
    ungated = compare(side(real()), side(real(accuracy=False)), RegressOptions(accuracy_gate=False))
    assert ungated.passed and ("fp32", None) not in verdicts(ungated)


def test_other_model_is_refused(real):
    other = real()
    other.model = dataclasses.replace(other.model, num_classes=2)
    with pytest.raises(QBenchError, match=r"tiny-cnn \(10 classes, 32x32 input\) but current .* \(2 classes"):
        compare(side(real()), side(other), RegressOptions())


def test_machine_mismatch_warns(real):
    (warning,) = compare(side(real()), side(real(cpu=OTHER_CPU)), RegressOptions()).warnings
    assert "AMD EPYC" in warning and "not comparable" in warning


def test_store_is_keyed_by_machine_fingerprint(tmp_path, real):
    store = tmp_path / "store"
    store.mkdir()
    here, there = side(real()), side(real(cpu=OTHER_CPU))
    path = save_baseline(here, store)
    assert path.name == f"{here.fingerprint()}.json" != f"{there.fingerprint()}.json"
    assert RegressBaseline.from_json(path).fingerprint == here.fingerprint()
    from qbench.regress import load_stored_baseline

    assert list(load_stored_baseline(store, here).results) == ["fp32"]
    with pytest.raises(QBenchError, match="holds no baseline for this machine"):
        load_stored_baseline(store, there)


def test_wrong_typed_record_is_refused(tmp_path, real):
    saved = save_baseline(side(real()), tmp_path / "baseline.json")
    data = json.loads(saved.read_text())
    data["results"][0]["latency"][1]["n_samples"] = 2.5
    saved.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=r"results\[0\]\.latency\[1\]\.n_samples is float"):
        load_results(saved)


def test_cli_exit_codes_and_every_output(tmp_path, monkeypatch, regress_cli, real):
    base = write_results(tmp_path / "base", real(runs=TIGHT, seed=1), real("onnx", runs=TIGHT, seed=3))
    same = write_results(tmp_path / "same", real(runs=TIGHT, seed=2), real("onnx", runs=TIGHT, seed=4))
    code, out, err = regress_cli("--baseline", str(base), "--current", str(same), "--junit", "ok.xml")
    assert code == 0 and "PASS: no regression in 6 comparisons" in out, out + err

    slow = write_results(
        tmp_path / "slow", real(runs=SLOW, seed=2), not_run(real(), "onnx", "failed", "boom")
    )
    step = tmp_path / "step-summary.md"
    step.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    args = ("--baseline", str(base), "--current", str(slow), "--summary-md", "s.md", "--json", "v.json")
    code, out, _ = regress_cli(*args, "--junit", "j.xml")
    assert code == 1 and "FAIL: 3 failure(s)" in out and "MISSING" in out
    summary = (tmp_path / "s.md").read_text()
    assert "qbench regress: FAIL" in summary and "| fp32 | 1 | median ms |" in summary
    assert step.read_text() == "earlier step\n" + summary + "\n"  # appended, not overwritten
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert (
        verdict["exit_code"] == 1
        and verdict["counts"]["REGRESSION"] == 2
        and verdict["counts"]["MISSING"] == 1
    )

    suite = ET.parse(tmp_path / "j.xml").getroot()
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert set(cases) == {
        ("qbench.fp32", "b1"),
        ("qbench.fp32", "b8"),
        ("qbench.fp32", "top-1"),
        ("qbench.onnx", "(variant)"),
    }
    assert suite.get("tests") == "4" and suite.get("failures") == "3"
    failure = cases[("qbench.fp32", "b1")].find("failure")
    assert (
        failure.get("type") == "regression"
        and "median ms: baseline 2.0" in failure.text
        and "runs 4/4" in failure.text
    )
    assert cases[("qbench.fp32", "top-1")].find("failure") is None
    ok_suite = ET.parse(tmp_path / "ok.xml").getroot()
    assert len(list(ok_suite.iter("testcase"))) == 6 and ok_suite.get("failures") == "0"

    code, _, _ = regress_cli(*args, "--allow-missing")
    assert code == 1  # the slowdown still fails
    for bad_args, message in [
        (("--baseline", "nowhere.json", "--current", str(same)), "does not exist"),
        (("--baseline", str(base), "--current", str(same), "--threshold", "10"), "ambiguous"),
        (("--baseline", str(base), "--baseline-store", str(tmp_path)), "not both"),
        (("--baseline-store", str(tmp_path), "--current", str(same)), "holds no baseline for this machine"),
        (("--ab", str(base), str(base)), "same workspace twice"),
        ((), "give --baseline PATH, --baseline-store DIR or --ab"),
    ]:
        code, _, err = regress_cli(*bad_args)
        assert code == 2 and message in err, (bad_args, err)
        assert err.startswith("qbench regress: error: ") and err.count("\n") == 1, err


def test_cli_store_round_trip(tmp_path, regress_cli, real):
    store = tmp_path / "store"
    store.mkdir()
    cur = write_results(tmp_path / "cur", real(runs=TIGHT))
    code, out, _ = regress_cli("--current", str(cur), "--save-baseline", str(store))
    assert code == 0 and "baseline saved" in out and len(list(store.glob("*.json"))) == 1
    code, out, _ = regress_cli("--current", str(cur), "--baseline-store", str(store))
    assert code == 0 and "PASS" in out


def test_console_script_corrupt_baseline(qbench_cli, tmp_path, real):
    write_results(tmp_path / "runs" / "default", real())
    (tmp_path / "baseline.json").write_text("{not json")
    proc = qbench_cli("regress", "--baseline", "baseline.json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("qbench regress: error: baseline baseline.json is not valid JSON")
