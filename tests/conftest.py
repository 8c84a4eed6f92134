"""Shared fixtures: a tiny trained baseline in a real workspace (tiny-cnn on digits, 32x32)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_META = {
    "model": "tiny-cnn",
    "num_classes": 10,
    "input_size": 32,
    "class_names": [str(d) for d in range(10)],
    "data": {"name": "digits", "root": None, "image_size": 32, "seed": 42, "augment": "none"},
}


def _train_tiny(ws_root: Path) -> Path:
    """A real, briefly trained tiny-cnn baseline (about 90% top-1 on digits in ~3 s)."""
    import torch

    from qbench.baselines.checkpoint import save_checkpoint
    from qbench.baselines.models import create_model
    from qbench.data.registry import load_data, loader
    from qbench.records import DataConfig
    from qbench.workspace import Workspace

    torch.manual_seed(0)
    data = load_data(DataConfig.from_dict(TINY_META["data"]))
    model = create_model("tiny-cnn", num_classes=10)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(4):
        for x, y in loader(data.train, 64, shuffle=True, seed=0):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    ws = Workspace(ws_root)
    save_checkpoint(ws.model_path, model.eval(), TINY_META)
    return ws_root


@pytest.fixture(scope="session", autouse=True)
def limits_cache(tmp_path_factory):
    """Machine limits for every test: a quick measurement cached in a temporary folder, so a bench
    test neither spends a full measurement (10-20 s) nor writes into the user's ~/.cache/qbench."""
    saved = {k: os.environ.get(k) for k in ("QBENCH_CACHE_DIR", "QBENCH_LIMITS")}
    os.environ["QBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("qbench-cache"))
    os.environ["QBENCH_LIMITS"] = "quick"
    yield Path(os.environ["QBENCH_CACHE_DIR"])
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def tiny_baseline_root(tmp_path_factory) -> Path:
    """Session-wide tiny workspace holding baseline/model.pt only; copy it before writing to it."""
    return _train_tiny(tmp_path_factory.mktemp("tiny-ws") / "default")


@pytest.fixture
def tiny_workspace(tiny_baseline_root, tmp_path):
    """A fresh, writable copy of the tiny workspace for one test."""
    from qbench.workspace import Workspace

    dest = tmp_path / "runs" / "default"
    shutil.copytree(tiny_baseline_root, dest)
    return Workspace(dest)


@pytest.fixture
def qbench_cli(tmp_path):
    """Run the real console entry point in a subprocess: qbench_cli('bench', ...) -> CompletedProcess."""
    import subprocess

    def run(*args: str, check: bool = False, timeout: float = 600):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        return subprocess.run(
            [sys.executable, "-m", "qbench.cli.main", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    return run
