"""The CI recipe of examples/qbench-regress.yml (also in the README), run end to end on tiny-cnn."""

from __future__ import annotations

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "examples" / "qbench-regress.yml"


def qbench_steps(text: str) -> list[str]:
    """The ``run: |`` blocks of the steps named "qbench: ...", in order (GitHub's YAML, read plainly)."""
    blocks = re.findall(r'- name: "qbench:[^\n]*\n\s+run: \|\n((?:\s{10}[^\n]*\n)+)', text)
    return [re.sub(r"(?m)^ {10}", "", b) for b in blocks]


def test_readme_carries_the_workflow():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    lines = WORKFLOW.read_text(encoding="utf-8").strip().splitlines()
    assert "\n".join(f"    {line}" if line else "" for line in lines) in readme  # a Markdown code block


@pytest.mark.slow
def test_recipe_end_to_end_on_tiny_cnn(tiny_baseline_root, tmp_path):
    import torch

    steps = qbench_steps(WORKFLOW.read_text(encoding="utf-8"))
    assert len(steps) == 2 and "qbench regress --ab runs/main runs/pr" in steps[1]
    state = torch.load(tiny_baseline_root / "baseline" / "model.pt", weights_only=False)["state_dict"]
    for side in ("main", "pr"):  # the two checkouts, each with its FP32 state dict
        (tmp_path / side / "models").mkdir(parents=True)
        torch.save(state, tmp_path / side / "models" / "classifier.pth")
    bin_dir = str(Path(os.sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "QBENCH_CHECKPOINT": "models/classifier.pth",
        "QBENCH_MODEL_ARGS": "--model tiny-cnn --num-classes 10 --image-size 32",
        "QBENCH_MODES": "int8-ptq",
        "QBENCH_BENCH_ARGS": "--repeats 3 --batch-sizes 1 --iters 10 --warmup 2 --threads 1",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md"),
    }
    for script in steps:
        proc = subprocess.run(
            ["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert proc.returncode in (0, 1), proc.stderr[-2000:]  # 1 would be a (false) regression
    verdict = json.loads((tmp_path / "qbench-verdict.json").read_text())
    assert verdict["mode"].startswith("A/B, 3 runs a side") and verdict["counts"]["MISSING"] == 0
    assert {(r["variant"], r["batch_size"]) for r in verdict["rows"]} == {
        ("fp32", 1),
        ("fp32", None),
        ("int8-ptq", 1),
        ("int8-ptq", None),
    }
    assert all(r["runs"] == [3, 3] for r in verdict["rows"] if r["batch_size"])
    cases = list(ET.parse(tmp_path / "qbench-junit.xml").getroot().iter("testcase"))
    assert len(cases) == 4
    assert "qbench regress:" in (tmp_path / "qbench-summary.md").read_text()
    assert (tmp_path / "step-summary.md").read_text().startswith("### ")
