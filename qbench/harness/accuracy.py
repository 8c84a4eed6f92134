"""Accuracy through the runner being measured, and agreement with the FP32 logits.

Each variant's test-split logits are saved as ``results/logits/<mode>.npy`` so agreement
with FP32 is computed from fp32's saved file, never by loading the FP32 model beside the
variant being measured.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qbench.harness.result import AccuracyStats, Agreement, ClassMetrics
from qbench.workspace import Workspace, atomic_path


def collect_logits(runner, dataset, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Run the whole split through ``runner`` (already loaded); float32 logits and int labels."""
    from qbench.data.registry import loader

    outs, labels = [], []
    for x, y in loader(dataset, batch_size):
        out = runner.infer(runner.prepare(x))
        runner.sync()
        outs.append(runner.to_logits(out).float().numpy())
        labels.append(y.numpy())
    return np.concatenate(outs).astype(np.float32), np.concatenate(labels).astype(np.int64)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def accuracy_stats(
    logits: np.ndarray, labels: np.ndarray, class_names: list[str], reference: np.ndarray | None = None
) -> AccuracyStats:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    n, k = logits.shape
    classes = list(range(k))
    pred = logits.argmax(axis=1)
    top5 = np.argsort(-logits, axis=1)[:, : min(5, k)]
    loss = float(-_log_softmax(logits)[np.arange(n), labels].mean())
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, pred, labels=classes, zero_division=0
    )
    names = class_names if len(class_names) == k else [str(c) for c in classes]
    return AccuracyStats(
        n_images=n,
        top1=float((pred == labels).mean() * 100),
        top5=float((top5 == labels[:, None]).any(axis=1).mean() * 100),
        loss=loss,
        per_class=[
            ClassMetrics(names[c], float(precision[c]), float(recall[c]), float(f1[c]), int(support[c]))
            for c in classes
        ],
        confusion=confusion_matrix(labels, pred, labels=classes).tolist(),
        agreement=None if reference is None else agreement(logits, reference),
    )


def agreement(logits: np.ndarray, reference: np.ndarray) -> Agreement:
    if logits.shape != reference.shape:
        raise ValueError(f"logits {logits.shape} and FP32 reference {reference.shape} differ in shape")
    a, b = logits.astype(np.float64), reference.astype(np.float64)
    diff = np.abs(a - b)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.where(norms > 0, (a * b).sum(axis=1) / np.where(norms > 0, norms, 1.0), 1.0)
    return Agreement(
        top1_agreement=float((a.argmax(axis=1) == b.argmax(axis=1)).mean() * 100),
        mean_abs_logit_diff=float(diff.mean()),
        max_abs_logit_diff=float(diff.max()),
        cosine=float(cos.mean()),
    )


def logits_path(ws: Workspace, mode: str) -> Path:
    return ws.results_dir / "logits" / f"{mode}.npy"


def save_logits(ws: Workspace, mode: str, logits: np.ndarray) -> Path:
    path = logits_path(ws, mode)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, logits)
    return path


def load_logits(ws: Workspace, mode: str, n_images: int) -> np.ndarray | None:
    """Saved logits of ``mode`` when they cover the current test split and are newer than
    the baseline checkpoint (a retrained baseline makes them stale), else None."""
    path = logits_path(ws, mode)
    if not path.is_file():
        return None
    if ws.model_path.is_file() and path.stat().st_mtime < ws.model_path.stat().st_mtime:
        return None
    try:
        arr = np.load(path)
    except (OSError, ValueError):
        return None
    return arr if arr.ndim == 2 and arr.shape[0] == n_images else None
