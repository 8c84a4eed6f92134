"""Accuracy figures from logits: top-1/top-5, loss, per-class P/R/F1, confusion, agreement.

Pure functions of numpy arrays, shared by the baseline step (per-split metrics) and the
harness (each variant through its own runner).
"""

from __future__ import annotations

import numpy as np

from qbench.records import AccuracyStats, Agreement, ClassMetrics


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
