"""Bad input of every class of issue 11, through the real console entry point in subprocesses.

Each case runs ``python -m qbench.cli.main ...`` in a folder holding a real tiny workspace
(tiny-cnn, benched), a folder data set with one corrupt PNG in val/, workspaces with records of
the wrong shape and an output folder; each must end with exit status 2, stderr one sentence
naming the fix (no traceback) and every file of that folder unchanged (sha256 before and
after; the workspace lock file, rewritten by each writer that takes it, excepted).

Cases already covered elsewhere are not repeated here: unknown model, data set and mode, a
missing import, a bench without a baseline, an empty data folder, a checkpoint of another class
count (tests/cli/test_cli_end_to_end.py), --calib-batches 0 and unknown modes of quantize
(tests/exporters/test_bad_input.py).

Read-only folders: a non-root user gets them from chmod; root gets a read-only bind mount in
a private user and mount namespace (``unshare -rm``); where neither works those cases skip.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

LOCK_NAME = ".qbench.lock"  # qbench.lock's file: its holder text changes with each writer
TINY = ("--model", "tiny-cnn", "--image-size", "32")


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    fix: str | tuple[str, ...]  # what the one sentence must say (each fragment, case-sensitive)
    readonly: tuple[str, ...] = ()  # folders (relative to the test folder) mounted read-only
    argparse: bool = False  # refused by argparse itself: its usage lines come before the sentence
    id: str = ""
    marks: tuple = field(default=())

    def param(self):
        return pytest.param(self, id=self.id or " ".join(self.args)[:70], marks=self.marks)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


# --device cuda where there is no GPU; on a GPU machine an index it does not have
NO_SUCH_CUDA = "cuda:99" if _cuda_available() else "cuda"
NO_CUDA_FIX = "device(s); pass cuda:0" if _cuda_available() else "no CUDA device; use --device cpu"

CASES = [
    # --- numbers that parse but mean nothing -------------------------------------------------
    Case(
        ("baseline", "--train", *TINY[:2], "--image-size", "0"), "--image-size 0 is too small; use 16 or more"
    ),
    Case(("baseline", "--model", "alexnet", "--image-size", "40"), "pass --image-size 63 or more"),
    Case(
        ("baseline", *TINY[:2], "--image-size", "100000"), ("--image-size 100000 needs at least", "or less")
    ),
    Case(("baseline", "--model", "alexnet-paper", "--image-size", "300"), "pass --image-size 258 or less"),
    Case(("baseline", *TINY, "--num-classes", "0"), "leave it out to use the data set's"),
    Case(("baseline", *TINY, "--num-classes", "-3"), "leave it out to use the data set's"),
    Case(("baseline", *TINY, "--max-batches", "-1"), "--max-batches -1 is too small; pass 1 or more"),
    Case(("baseline", *TINY, "--max-batches", "0"), "--max-batches 0 is too small; pass 1 or more"),
    Case(("baseline", *TINY, "--epochs", "0"), "--epochs must be 1 or more"),
    Case(("baseline", *TINY, "--batch-size", "0"), "--batch-size must be 1 or more"),
    Case(("baseline", *TINY, "--lr", "-0.1"), "learning rates must be positive"),
    Case(("baseline", *TINY, "--lr-head", "0"), "learning rates must be positive"),
    Case(("baseline", *TINY, "--momentum", "1.5"), "--momentum 1.5 must lie in [0, 1)"),
    Case(("baseline", *TINY, "--weight-decay", "-1"), "--weight-decay -1 is too small; pass 0 or more"),
    Case(("baseline", *TINY, "--label-smoothing", "1"), "--label-smoothing 1 must lie in [0, 1)"),
    Case(("baseline", *TINY, "--patience", "0"), "--patience 0 is too small; pass 1 or more"),
    Case(("baseline", *TINY, "--workers", "-1"), "--workers -1 is too small; pass 0 or more"),
    Case(("baseline", *TINY, "--seed", "-1"), "--seed -1 is out of range"),
    Case(("baseline", *TINY, "--seed", str(2**40)), "pass a whole number from 0 to"),
    Case(("baseline", *TINY, "--save-every", "-5"), "--save-every must not be negative"),
    Case(("baseline", *TINY, "--nproc", "0"), "--nproc 0 is not a process count; pass 1 or more"),
    Case(
        ("baseline", *TINY, "--image-size", "big"), "argument --image-size: invalid int value", argparse=True
    ),
    Case(("run", "--iters", "0"), "--iters must be 1 or more"),
    Case(("run", "--warmup", "-1"), "must not be negative"),
    Case(("run", "--qat-epochs", "0"), "--qat-epochs must be 1 or more"),
    Case(("run", "--qat-max-batches", "-2"), "--qat-max-batches -2 is too small; pass 1 or more (0: whole"),
    Case(("run", "--calib-batches", "0"), "pass --calib-batches 1 or more"),
    Case(("run", "--batch-sizes", "0,8"), "expected positive whole numbers", argparse=True),
    Case(("bench", "--batch-sizes", "1,8,1"), "1 is given more than once", argparse=True),
    Case(("run", "--batch-sizes", "1,,4"), "(an empty item)", argparse=True),
    # an unset shell variable ($QBENCH_MODES) must not turn into every mode
    Case(("quantize", "--mode", ""), "which names none", argparse=True),
    Case(("run", "--modes", ","), "which names none", argparse=True),
    Case(("run", "--max-seconds-per-batch", "-1"), "seconds must not be negative", argparse=True),
    Case(("run", *TINY[:2], "--image-size", "100000"), "pass --image-size"),
    Case(
        ("run", *TINY, "--batch-sizes", "1,100000000"), ("--batch-sizes 100000000 needs at least", "or less")
    ),
    Case(
        ("quantize", "--mode", "int8-ptq", "--calib-batch-size", "0"), "--calib-batch-size must be 1 or more"
    ),
    Case(("quantize", "--mode", "qat", "--qat-epochs", "0"), "--qat-epochs must be 1 or more"),
    Case(("quantize", "--mode", "qat", "--qat-lr", "0"), "--qat-lr 0 must be positive"),
    Case(("quantize", "--mode", "qat", "--qat-max-batches", "-1"), "pass 1 or more"),
    Case(("quantize", "--mode", "int8-ptq", "--seed", "-2"), "--seed -2 is out of range"),
    Case(("quantize", "--mode", "int8-ptq", "--calib-method", "median"), "unknown --calib-method 'median'"),
    Case(("bench", "--iters", "0"), "--iters must be 1 or more"),
    Case(("bench", "--iters", "many"), "argument --iters: invalid int value", argparse=True),
    Case(("bench", "--warmup-s", "-1"), "must not be negative"),
    Case(("bench", "--min-seconds", "-0.5"), "must not be negative"),
    Case(("bench", "--repeats", "0"), "--repeats must be 1 or more"),
    Case(("bench", "--threads", "0"), "--threads must be 1 or more"),
    Case(("bench", "--cv-threshold", "0"), "--cv-threshold must be positive"),
    Case(("bench", "--max-seconds-per-batch", "1", "--min-seconds", "2"), "must be above --min-seconds"),
    Case(("bench", "--batch-sizes", "1,100000000"), ("--batch-sizes 100000000 needs at least", "or less")),
    Case(("evaluate", "--batch-size", "0"), "--batch-size 0 is too small; pass 1 or more"),
    Case(("evaluate", "--batch-size", "100000000"), "keep --batch-size at"),
    Case(("baseline", *TINY, "--batch-size", "100000000"), "or a smaller --batch-size"),
    Case(("quantize", "--mode", "int8-ptq", "--calib-batch-size", "100000000"), "keep --calib-batch-size at"),
    Case(("regress", "--baseline", "runs/default", "--threshold", "-5"), "non-negative percentage"),
    Case(("regress", "--baseline", "runs/default", "--min-runs", "1"), "--min-runs must be 2 or more"),
    Case(("regress", "--baseline", "runs/default", "--alpha", "0.9"), "strictly between 0 and 0.5"),
    Case(("regress", "--baseline", "runs/default", "--min-abs-ms", "-1"), "zero or a positive number"),
    Case(("regress", "--baseline", "runs/default", "--max-accuracy-drop", "-1"), "zero or a positive number"),
    Case(
        ("regress", "--ab", "runs/default", "other/default", "--repeats", "0"), "--repeats must be 1 or more"
    ),
    # --- names ------------------------------------------------------------------------------------
    Case(("baseline", *TINY, "--exp", ""), "--exp is empty; pass a name"),
    Case(("baseline", *TINY, "--exp", ".."), "is a path, not a name"),
    Case(("run", "--exp", "a/b"), "is a path, not a name"),
    Case(("bench", "--exp", "../runs"), "is a path, not a name"),
    Case(("quantize", "--exp", "  "), "--exp is empty"),
    Case(("compare", "--exp", ""), "--exp is empty"),
    Case(("baseline", *TINY, "--runs-dir", ""), "--runs-dir is empty"),
    # --- devices ----------------------------------------------------------------------------------
    Case(("baseline", *TINY, "--device", "tpu"), "pass cpu, cuda or cuda:N"),
    Case(("baseline", *TINY, "--device", "cuda:x"), "pass cpu, cuda or cuda:N"),
    Case(("quantize", "--mode", "fp16", "--device", "tpu"), "pass cpu, cuda or cuda:N"),
    Case(("bench", "--device", "tpu"), "pass cpu, cuda or cuda:N"),
    Case(("evaluate", "--device", "tpu"), "pass cpu, cuda or cuda:N"),
    Case(("regress", "--ab", "runs/default", "other/default", "--device", "tpu"), "pass cpu, cuda or cuda:N"),
    Case(("baseline", *TINY, "--device", NO_SUCH_CUDA), NO_CUDA_FIX),
    Case(("quantize", "--mode", "fp16", "--device", NO_SUCH_CUDA), NO_CUDA_FIX),
    Case(("bench", "--device", NO_SUCH_CUDA), NO_CUDA_FIX),
    Case(("evaluate", "--device", NO_SUCH_CUDA), NO_CUDA_FIX),
    # --- data -------------------------------------------------------------------------------------
    Case(
        ("baseline", *TINY, "--dataset", "imagefolder", "--data-root", "data", "--exp", "img"),
        ("data/val/b/corrupt.png", "cannot be read", "--skip-bad-images"),
        id="corrupt PNG in val/ (baseline)",
    ),
    Case(
        ("run", *TINY, "--dataset", "imagefolder", "--data-root", "data", "--exp", "img"),
        ("data/val/b/corrupt.png", "--skip-bad-images"),
        id="corrupt PNG in val/ (run)",
    ),
    Case(
        ("baseline", *TINY, "--dataset", "imagefolder", "--data-root", "data-train", "--exp", "img"),
        ("2 images under data-train cannot be read", "data-train/train/a/empty.png", "truncated.png"),
        id="empty and truncated PNGs in train/",
    ),
    Case(
        ("baseline", *TINY, "--dataset", "imagefolder", "--data-root", "nowhere"),
        "--data-root nowhere does not exist",
    ),
    Case(("evaluate", "--checkpoint", "missing.pt"), "--checkpoint missing.pt does not exist"),
    # --- outputs that cannot be written: refused before the work ----------------------------------
    Case(
        ("compare", "--report", "text", "--out", "ro/reports"),
        "cannot write into ro/reports",
        readonly=("ro",),
    ),
    Case(
        ("compare", "--report", "text"), "cannot write into runs/default/reports", readonly=("runs/default",)
    ),
    Case(
        ("regress", "--current", "runs/default", "--save-baseline", "ro/b.json"),
        "cannot write into ro",
        readonly=("ro",),
    ),
    Case(
        ("regress", "--current", "runs/default", "--save-baseline", "ro"),
        "cannot write into ro",
        readonly=("ro",),
    ),
    Case(
        ("regress", "--baseline", "runs/default", "--json", "ro/verdict.json"),
        "pass another folder with --json",
        readonly=("ro",),
    ),
    Case(("regress", "--baseline", "runs/default", "--junit", "ro/j.xml"), "--junit", readonly=("ro",)),
    Case(
        ("regress", "--baseline", "runs/default", "--summary-md", "ro/s.md"), "--summary-md", readonly=("ro",)
    ),
    Case(
        ("regress", "--baseline", "runs/default", "--json", "ro"), "--json ro is a folder; pass a file name"
    ),
    Case(("baseline", *TINY, "--out", "ro/ws"), "ro/ws", readonly=("ro",)),
    Case(
        ("bench", "--iters", "2"),
        "cannot write into runs/default/results",
        readonly=("runs/default/results",),
    ),
    Case(
        ("quantize", "--mode", "fp16"),
        "cannot write into runs/default/variants",
        readonly=("runs/default/variants",),
    ),
    Case(
        ("run", *TINY, "--iters", "2"),
        "cannot write into runs/default/reports",
        readonly=("runs/default/reports",),
    ),
    Case(("evaluate",), "cannot write into runs/default/evaluation", readonly=("runs/default/evaluation",)),
    # --- records that parse but have the wrong shape ----------------------------------------------
    Case(
        ("compare", "broken/latency-string", "--report", "text", "--out", "out"), ("fp32.json", "latency[0]")
    ),
    Case(
        ("compare", "broken/missing-field", "--report", "text", "--out", "out"),
        ("fp32.json", "'n_samples' is missing"),
    ),
    Case(
        ("compare", "broken/not-json", "--report", "text", "--out", "out"), ("fp32.json", "is not valid JSON")
    ),
    Case(("regress", "--baseline", "broken/latency-string", "--current", "runs/default"), "latency[0]"),
    # --- reports and other inputs a run needs, refused before it starts --------------------------
    Case(("run", *TINY, "--report", "pdf"), "unknown report format 'pdf'"),
    Case(("compare", "--report", "pdf"), "unknown report format 'pdf'"),
    Case(("compare", "--templates", "no-templates"), "--templates no-templates does not exist"),
    Case(("compare", "nowhere/results"), "nowhere/results does not exist"),
]


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != LOCK_NAME
    }


def _png_tree(root: Path, per_class: int = 5) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("a", "b"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def _readonly_method(probe: Path) -> str | None:
    """'chmod' (non-root), 'mount' (root with user namespaces), or None: no way to get one here."""
    if os.geteuid() != 0:
        return "chmod"
    if shutil.which("unshare") is None:
        return None
    probe.mkdir(exist_ok=True)
    script = 'mount --bind -o ro "$1" "$1" && ! touch "$1/x" 2>/dev/null'
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(probe)], capture_output=True, timeout=30
    )
    return "mount" if done.returncode == 0 and not (probe / "x").exists() else None


@pytest.fixture(scope="module")
def readonly_method(tmp_path_factory) -> str | None:
    return _readonly_method(tmp_path_factory.mktemp("ro-probe"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The test folder: runs/default (tiny-cnn baseline, fp32 variant and result, train.json),
    other/default (a copy, for --ab), data/ and data-train/ with corrupt images, broken/ workspaces."""
    from qbench import pipeline
    from qbench.baselines.request import BaselineRequest
    from qbench.records import BenchOptions, BenchResult, DataConfig, TrainConfig
    from qbench.workspace import Workspace

    root = tmp_path_factory.mktemp("bad-inputs")
    ws = Workspace(root / "runs" / "default")
    request = BaselineRequest(
        model="tiny-cnn",
        data=DataConfig(image_size=32, augment="none"),
        train=TrainConfig(epochs=1, max_batches=2, batch_size=32),
    )
    pipeline.baseline(ws, request)
    pipeline.bench(ws, BenchOptions(batch_sizes=[1], iters=2, warmup=0, isolate=False, accuracy=False))
    for sub in ("variants", "reports", "evaluation"):
        (ws.root / sub).mkdir(exist_ok=True)
    shutil.copytree(ws.root, root / "other" / "default")
    (root / "ro").mkdir()
    (root / "out").mkdir()

    _png_tree(root / "data")
    (root / "data" / "val" / "b" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    _png_tree(root / "data-train")
    good = (root / "data-train" / "train" / "a" / "0.png").read_bytes()
    (root / "data-train" / "train" / "a" / "empty.png").write_bytes(b"")
    (root / "data-train" / "train" / "b" / "truncated.png").write_bytes(good[: len(good) // 2])

    result = json.loads(ws.result_path("fp32").read_text())
    for name, change in {
        "latency-string": lambda d: d["latency"].__setitem__(0, "fast"),
        "missing-field": lambda d: d["latency"][0].pop("n_samples"),
        "not-json": None,
    }.items():
        broken = root / "broken" / name / "results" / "fp32.json"
        broken.parent.mkdir(parents=True)
        if change is None:
            broken.write_text(json.dumps(result)[:200])
            continue
        data = json.loads(json.dumps(result))
        change(data)
        broken.write_text(json.dumps(data))
    assert BenchResult.from_json(ws.result_path("fp32")).ok
    return root


def _command(case: Case, folder: Path, method: str | None) -> list[str]:
    qbench = [sys.executable, "-m", "qbench.cli.main", *case.args]
    if not case.readonly or method != "mount":
        return qbench
    mounts = " && ".join(f'mount --bind -o ro "{p}" "{p}"' for p in case.readonly)
    return ["unshare", "-rm", "sh", "-c", f'{mounts} && exec "$@"', "sh", *qbench]


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_input_is_one_sentence_exit_2_and_changes_nothing(case: Case, folder: Path, readonly_method):
    method = readonly_method if case.readonly else None
    if case.readonly and method is None:
        pytest.skip(
            "no read-only folder possible here: running as root without user namespaces (unshare -rm)"
        )
    before = _tree_hashes(folder)
    modes = {p: (folder / p).stat().st_mode for p in case.readonly}
    try:
        if method == "chmod":
            for p in case.readonly:
                (folder / p).chmod(0o555)
        proc = subprocess.run(
            _command(case, folder, method),
            cwd=folder,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        for p, mode in modes.items():
            (folder / p).chmod(mode)
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    if case.argparse:  # argparse's own format: usage lines, then 'qbench CMD: error: argument ...'
        assert lines and lines[0].startswith("usage: qbench"), proc.stderr
        lines = lines[-1:]
    assert len(lines) == 1, proc.stderr  # one sentence, nothing printed before it (no work began)
    sentence = lines[0]
    assert sentence.startswith(f"qbench {case.args[0]}: error: "), sentence
    assert case.argparse or sentence.rstrip().endswith("."), sentence
    for fragment in (case.fix,) if isinstance(case.fix, str) else case.fix:
        assert fragment in sentence, sentence
    assert _tree_hashes(folder) == before, "the bad input changed files of the workspace"


def test_cases_are_distinct():
    """Each case is a different bad input: the count in the module docstring's report is honest."""
    keys = [(c.args, c.readonly) for c in CASES]
    assert len(keys) == len(set(keys))
