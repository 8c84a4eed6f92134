"""Accuracy and agreement metrics on hand-made logits and on a real model."""

from __future__ import annotations

import numpy as np
import pytest

from qbench.harness.accuracy import accuracy_stats, agreement


def test_accuracy_against_hand_computed_values():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 2.0], [3.0, 0.0, 1.0]], dtype=np.float32)
    labels = np.array([0, 1, 1, 2])
    s = accuracy_stats(logits, labels, ["a", "b", "c"])
    assert s.top1 == 50.0 and s.top5 == 100.0 and s.n_images == 4
    lse = np.log(np.exp(logits).sum(axis=1))
    assert s.loss == pytest.approx(float(np.mean(lse - logits[np.arange(4), labels])), rel=1e-6)
    assert s.confusion == [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    b = s.per_class[1]
    assert (b.label, b.precision, b.recall, b.support) == ("b", 1.0, 0.5, 2)
    assert b.f1 == pytest.approx(2 / 3)
    assert s.agreement is None


def test_model_agrees_with_itself(tiny_workspace):
    import torch

    from qbench.baselines.checkpoint import load_checkpoint

    model, _ = load_checkpoint(tiny_workspace.model_path)
    x = torch.randn(32, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x).numpy()
        same = model(x).numpy()
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.05)
        perturbed = model(x).numpy()
    a = agreement(same, ref)
    assert (a.top1_agreement, a.mean_abs_logit_diff, a.max_abs_logit_diff) == (100.0, 0.0, 0.0)
    assert a.cosine == pytest.approx(1.0)
    b = agreement(perturbed, ref)
    assert b.max_abs_logit_diff > b.mean_abs_logit_diff > 0
    assert b.cosine < 1.0
    assert b.top1_agreement == pytest.approx(100.0 * np.mean(perturbed.argmax(1) == ref.argmax(1)))
