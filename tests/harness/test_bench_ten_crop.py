"""Bench accuracy follows the baseline's --eval-crops: ten crops averaged, like `qbench evaluate`."""

from __future__ import annotations

import numpy as np


def test_bench_accuracy_uses_the_baselines_ten_crop_views(tiny_workspace):
    import torch

    from qbench.baselines.checkpoint import load_checkpoint, save_checkpoint
    from qbench.baselines.metrics import accuracy_stats
    from qbench.data.registry import load_data
    from qbench.data.views import collect_logits
    from qbench.pipeline.bench import bench
    from qbench.records import BenchOptions, DataConfig

    model, meta = load_checkpoint(tiny_workspace.model_path)
    meta["data"] = {**meta["data"], "eval_crops": "ten"}
    save_checkpoint(tiny_workspace.model_path, model, meta)

    (result,) = bench(tiny_workspace, BenchOptions(batch_sizes=[1], iters=3, warmup=1))
    assert result.status == "ok", result.notes
    assert result.accuracy.eval_crops == "ten"

    data = load_data(DataConfig.from_dict(meta["data"]))
    with torch.inference_mode():
        logits, labels = collect_logits(model.eval(), data.eval_split("test"), 64)
    expected = accuracy_stats(logits, labels, data.class_names)
    assert result.accuracy.n_images == len(data.test)
    assert np.isclose(result.accuracy.top1, expected.top1) and np.isclose(result.accuracy.loss, expected.loss)
