"""The baseline step: reproducible from its seed, history and metrics recorded, early stopping."""

import torch

from qbench.baselines.pipeline import BaselineRequest, make_baseline
from qbench.baselines.presets import from_preset
from qbench.records import DataConfig, TrainRecord
from qbench.workspace import Workspace


def _request(**train):
    config = from_preset("reference", epochs=2, batch_size=64, max_batches=4, **train)
    return BaselineRequest(model="tiny-cnn", data=DataConfig(image_size=32), train=config)


def test_same_seed_same_weights_and_history(tmp_path):
    a, b = Workspace(tmp_path / "a"), Workspace(tmp_path / "b")
    rec_a = make_baseline(a, _request())
    rec_b = make_baseline(b, _request())
    assert rec_a.history[-1].train_loss == rec_b.history[-1].train_loss
    sa = torch.load(a.model_path, weights_only=True)["state_dict"]
    sb = torch.load(b.model_path, weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_train_json_records_config_history_and_metrics(tmp_path):
    ws = Workspace(tmp_path / "ws")
    made = make_baseline(ws, _request())
    rec = TrainRecord.from_json(ws.train_json)
    assert rec == made  # what was written reads back as the same record
    assert rec.training.optimizer == "AdamW" and rec.training.label_smoothing == 0.1
    assert rec.source.kind == "train" and rec.training_precision == "fp32"
    assert [h.epoch for h in rec.history] == [1, 2]
    assert all(h.train_acc <= h.train_top5 <= 100 and h.val_acc <= h.val_top5 <= 100 for h in rec.history)
    assert rec.outcome.epochs_trained == 2 and 0 <= rec.test.top1 <= rec.test.top5 <= 100
    assert rec.outcome.best_val_acc == max(h.val_acc for h in rec.history)
    assert rec.outcome.train_seconds > 0
    assert rec.summary.total_params > 0 and rec.env.torch_threads >= 1
    assert rec.data == DataConfig(image_size=32) and sum(rec.data_sizes.values()) == 1797


def test_early_stopping_stops_after_patience(tmp_path):
    # a learning rate too small to move validation accuracy: no improvement after epoch 1
    req = _request(lr_backbone=1e-12, lr_head=1e-12, early_stopping_patience=1)
    req.train.epochs = 5
    rec = make_baseline(Workspace(tmp_path / "ws"), req)
    assert rec.outcome.early_stopped is True
    assert rec.outcome.epochs_trained == 2


def test_per_split_metrics_like_reference_003(tmp_path):
    rec = make_baseline(Workspace(tmp_path / "ws"), _request())
    splits = rec.splits
    assert [len(splits[s].per_class) for s in ("train", "val", "test")] == [10, 10, 10]
    assert [splits[s].n_images for s in ("train", "val", "test")] == [1257, 270, 270]
    assert splits["test"] is rec.test
    assert sum(c.support for c in splits["val"].per_class) == 270
    assert all(0 <= c.precision <= 1 and 0 <= c.recall <= 1 for c in splits["val"].per_class)


def test_deterministic_mode_ends_with_training(tmp_path):
    before = torch.are_deterministic_algorithms_enabled()
    make_baseline(Workspace(tmp_path / "ws"), _request())
    assert torch.are_deterministic_algorithms_enabled() == before
