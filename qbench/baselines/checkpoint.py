"""FP32 checkpoints: qbench's own format, and importing one a user already has.

qbench's checkpoint is a dict saved with torch.save::

    {"format": "qbench-checkpoint", "schema_version": 1, "model": "alexnet",
     "num_classes": 10, "input_size": 64, "class_names": [...], "state_dict": {...}}

Imports accept a bare state dict (e.g. torchvision's ``alexnet-owt-7be5be79.pth``) or a dict
holding one under ``state_dict``, ``model_state_dict`` or ``model``. Files are read with
``weights_only=True``: a checkpoint never runs code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from qbench.baselines.models import MODELS, create_model
from qbench.errors import QBenchError
from qbench.workspace import atomic_path

FORMAT = "qbench-checkpoint"
# the layout of model.pt, versioned apart from the JSON records (its meta is not a record)
CHECKPOINT_VERSION = 1
STATE_KEYS = ("state_dict", "model_state_dict", "model")


def save_checkpoint(path: Path, model: nn.Module, meta: dict[str, Any]) -> Path:
    payload = {"format": FORMAT, "schema_version": CHECKPOINT_VERSION, **meta}
    payload["state_dict"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def _read(path: Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise QBenchError(f"checkpoint {path} does not exist; check the path or train a baseline first.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/corrupt pickles
        raise QBenchError(
            f"checkpoint {path} cannot be read ({load_error_reason(exc)}); it is corrupt, truncated or not "
            "a PyTorch weights file: pass a state-dict checkpoint (torch.save(model.state_dict(), path))."
        ) from None


# torch's weights-only refusal: a paragraph of advice around the one line that says what failed
_UNPICKLER = "WeightsUnpickler error:"


def load_error_reason(exc: Exception) -> str:
    """The part of a ``torch.load`` error that says what failed, short enough for one sentence."""
    text = str(exc).strip()
    if _UNPICKLER in text:
        detail = " ".join(text.split(_UNPICKLER, 1)[1].strip().split("\n\n")[0].split())
        return f"the weights-only loader refused it: {detail.split('. ')[0].rstrip('.')[:160]}"
    return text.splitlines()[0][:160] if text else type(exc).__name__


def _state_dict_of(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in STATE_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            # strip wrappers added by DataParallel / torch.compile
            return {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in tensors.items()}
    raise QBenchError(
        f"checkpoint {path} holds no state dict; save one with torch.save(model.state_dict(), path)."
    )


def build_from_state(
    state: dict[str, torch.Tensor], model_name: str, num_classes: int, path: Path
) -> nn.Module:
    model = create_model(model_name, num_classes=num_classes)
    expected = model.state_dict()
    if state and all(k.startswith("net.") for k in state) and not any(k.startswith("net.") for k in expected):
        # earlier qbench versions wrapped resnet18 as self.net: their checkpoints still load
        state = {k.removeprefix("net."): v for k, v in state.items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise QBenchError(
            f"checkpoint {path} does not match architecture {model_name!r} "
            f"({len(missing)} missing, {len(unexpected)} unexpected tensors, e.g. "
            f"{(missing or unexpected)[0]!r}); pass the --model it was trained with."
        )
    for key, tensor in expected.items():
        if state[key].shape != tensor.shape:
            head = key in _head_keys(model)
            if head:
                raise QBenchError(
                    f"checkpoint {path} has {state[key].shape[0]} output classes but "
                    f"--num-classes is {num_classes}; pass --num-classes {state[key].shape[0]}."
                )
            raise QBenchError(
                f"checkpoint {path} tensor {key!r} has shape {tuple(state[key].shape)}, "
                f"{model_name!r} expects {tuple(tensor.shape)}; pass the --model it was trained with."
            )
    model.load_state_dict(state)
    return model.eval()


def _head_keys(model: nn.Module) -> set[str]:
    last = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1:]
    return {f"{last[0]}.weight", f"{last[0]}.bias"} if last else set()


def load_checkpoint(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Load a qbench checkpoint; returns the FP32 model in eval mode and its metadata."""
    obj = _read(path)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise QBenchError(
            f"{path} is not a qbench checkpoint; bring it in with 'qbench baseline --import {path} "
            "--model M --num-classes N'."
        )
    if obj["model"] not in MODELS:
        MODELS.entry(obj["model"])  # raises the unknown-model error
    meta = {k: v for k, v in obj.items() if k != "state_dict"}
    return build_from_state(obj["state_dict"], obj["model"], obj["num_classes"], path), meta


def import_checkpoint(path: Path, model_name: str, num_classes: int) -> nn.Module:
    MODELS.entry(model_name)
    obj = _read(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        if obj["model"] != model_name:
            raise QBenchError(f"{path} holds a {obj['model']!r} model; pass --model {obj['model']}.")
        return build_from_state(obj["state_dict"], model_name, num_classes, path)
    return build_from_state(_state_dict_of(obj, Path(path)), model_name, num_classes, Path(path))
