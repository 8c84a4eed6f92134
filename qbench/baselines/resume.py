"""The resumable training state (``baseline/resume.pt``), written by rank 0 after every epoch.

It holds what continuing needs to match an uninterrupted run: the model, optimizer and
scheduler states, the epoch, the history so far, the best weights and early-stopping count,
and every rank's random-number generator states (torch, CUDA, Python, NumPy). Read with
``weights_only=True`` like every checkpoint: it never runs code.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from qbench.errors import QBenchError
from qbench.records import TrainConfig
from qbench.workspace import atomic_path

FORMAT = "qbench-resume"
VERSION = 1
# config fields a resumed run may change: more epochs, other loader workers or patience
MAY_CHANGE = {"epochs", "workers", "early_stopping_patience", "save_every_s"}


def rng_state() -> dict[str, Any]:
    import numpy as np

    _, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [torch.from_numpy(keys.astype("int64")), pos, has_gauss, cached],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np

    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype("uint32"), pos, has_gauss, cached))


def save_state(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)


def load_state(path: Path, config: TrainConfig, identity: dict[str, Any]) -> dict[str, Any]:
    """The saved state, refused when it belongs to another model, data set or training config
    (``identity``: the model name and data config the run was started with)."""
    if not Path(path).is_file():
        raise QBenchError(f"no resumable training state at {path}; start without --resume.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated files
        raise QBenchError(f"{path} cannot be read ({type(exc).__name__}); start without --resume.") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("version") != VERSION:
        raise QBenchError(f"{path} is not a qbench resume state of this version; start without --resume.")
    for key, value in identity.items():
        if state["identity"].get(key) != value:
            raise QBenchError(
                f"{path} trains another {key} ({state['identity'].get(key)!r}); pass the --{key} flags of "
                "the interrupted run or start without --resume."
            )
    saved, now = state["config"], config.to_dict()
    changed = sorted(k for k in now if k not in MAY_CHANGE and saved.get(k) != now[k])
    if changed:
        k = changed[0]
        raise QBenchError(
            f"{path} was trained with {k}={saved.get(k)!r}, this run has {now[k]!r}; pass the flags of "
            "the interrupted run or start without --resume."
        )
    return state
