"""What ``--baseline`` / ``--current`` accept: a result file, a workspace, its results/ folder, any
folder of result JSON files (a downloaded CI artifact), a runs/ folder holding the default
experiment; and one clear sentence for a folder holding none of them."""

from __future__ import annotations

import json
import shutil

import pytest
from regress_records import not_run, write_results

from qbench.errors import QBenchError
from qbench.regress import load_results
from qbench.reports.sources import load_source, load_sources
from qbench.workspace import Workspace

TIGHT = [1.0, 1.01, 0.99, 1.0]


def test_cli_baseline_is_a_plain_folder_of_result_files(tmp_path, regress_cli, real):
    """The reported case: 'regress --runs-dir R --exp ws --baseline cmp/base_results' failed with
    'no results in cmp/base_results/results'."""
    main = write_results(tmp_path / "main", real(runs=TIGHT, seed=1), real("onnx", runs=TIGHT, seed=3))
    shutil.copytree(Workspace(main).results_dir, tmp_path / "cmp" / "base_results")
    write_results(tmp_path / "R" / "ws", real(runs=TIGHT, seed=2), real("onnx", runs=TIGHT, seed=4))
    args = ("--runs-dir", "R", "--exp", "ws", "--baseline", "cmp/base_results", "--json", "v.json")
    code, out, err = regress_cli(*args)
    assert code == 0 and "PASS: no regression in 6 comparisons" in out, out + err
    assert json.loads((tmp_path / "v.json").read_text())["baseline"] == "cmp/base_results"


def test_every_accepted_form_reads_the_same_results(tmp_path, real):
    ws = write_results(tmp_path / "runs" / "default", real(), real("onnx", seed=3))
    plain = tmp_path / "artifact"
    shutil.copytree(Workspace(ws).results_dir, plain)
    both = ["fp32", "onnx"]
    for path in (ws, ws / "results", plain, tmp_path / "runs"):
        assert list(load_results(path).results) == both, path
    assert list(load_results(plain / "onnx.json").results) == ["onnx"]
    assert load_source(ws / "results").root == ws and load_source(plain).root == plain


def test_plain_folders_side_by_side_stay_two_sources(tmp_path, real):
    """Two artifacts downloaded into one folder are two sources, not one merged workspace."""
    for name, cpu in (("base_results", None), ("pr_results", "AMD EPYC 7763 64-Core Processor")):
        folder = tmp_path / "cmp" / name
        folder.mkdir(parents=True)
        real(cpu=cpu).save_json(folder / "fp32.json")
    sources = load_sources([tmp_path / "cmp" / "base_results", tmp_path / "cmp" / "pr_results"])
    assert [s.root.name for s in sources] == ["base_results", "pr_results"]


def test_a_failed_bench_beside_a_plain_folder_is_noted(tmp_path, real):
    plain = tmp_path / "artifact"
    plain.mkdir()
    real().save_json(plain / "fp32.json")
    not_run(real(), "fp32", "failed", "worker exited with status 7").save_json(plain / "failed" / "fp32.json")
    (result,) = load_source(plain).results
    assert any("failed: worker exited with status 7" in n for n in result.notes)


def test_a_folder_with_neither_is_one_clear_sentence(tmp_path, regress_cli, real):
    write_results(tmp_path / "cur", real())
    (tmp_path / "nothing" / "sub").mkdir(parents=True)
    (tmp_path / "nothing" / "notes.txt").write_text("not a result")
    code, out, err = regress_cli("--baseline", "nothing", "--current", "cur")
    assert code == 2 and out == ""
    assert err == (
        "qbench regress: error: no results in nothing: it holds neither result JSON files nor a results/ "
        "folder; pass a workspace, a folder of result JSON files or one result file.\n"
    )
    bare = Workspace(tmp_path / "bare")  # a workspace not benched yet: say which step to run
    bare.baseline_dir.mkdir(parents=True)
    with pytest.raises(QBenchError, match=r"no results in .*bare/results; run 'qbench bench'"):
        load_results(bare.root)


def test_a_baseline_store_passed_as_baseline_says_so(tmp_path, regress_cli, real):
    """A store is a folder of JSON files too, but of saved baselines: name the flag that reads it."""
    write_results(tmp_path / "cur", real())
    (tmp_path / "store").mkdir()
    assert regress_cli("--current", "cur", "--save-baseline", "store")[0] == 0
    code, _, err = regress_cli("--current", "cur", "--baseline", "store")
    assert code == 2 and "is a folder of baselines saved by 'qbench regress --save-baseline'" in err
    assert "--baseline-store store" in err and err.count("\n") == 1
