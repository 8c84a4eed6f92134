"""One short epoch per data set layout, the pixel preset's noise, and TenCrop against a hand computation."""

import math

import pytest
import torch
from layouts import CIFAR10_NAMES, cifar10_tree, image_tree, mnist_tree, tinyimagenet_tree

from qbench.baselines.pipeline import BaselineRequest, make_baseline
from qbench.baselines.presets import from_preset
from qbench.data import views
from qbench.data.registry import load_data
from qbench.data.transforms import build, build_ten_crop
from qbench.records import DataConfig
from qbench.workspace import Workspace

LAYOUTS = {
    "imagefolder": lambda root: image_tree(root, splits=("train", "val", "test")),
    "imagenet": lambda root: image_tree(root, classes=("n01", "n02"), splits=("train", "val")),
    "tinyimagenet": tinyimagenet_tree,
    "mnist": mnist_tree,
    "cifar10": cifar10_tree,
}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_one_short_epoch_per_layout_with_ten_crop_metrics(name, tmp_path):
    root = LAYOUTS[name](tmp_path / "data")
    data = DataConfig(name=name, root=root, image_size=16, eval_crops="ten", val_fraction=0.2)
    request = BaselineRequest(
        model="tiny-cnn", data=data, train=from_preset("paper", epochs=1, batch_size=8, max_batches=2)
    )
    rec = make_baseline(Workspace(tmp_path / "ws"), request)
    assert [h.epoch for h in rec.history] == [1] and rec.history[0].val_top5 is not None
    assert rec.data.eval_crops == "ten" and rec.splits["test"].n_images == rec.data_sizes["test"]


def test_pixel_preset_adds_gaussian_noise():
    train_t, eval_t = build("pixel", 16, from_tensor=True)
    image = torch.full((3, 16, 16), 0.5)
    torch.manual_seed(0)
    a = train_t(image)
    # a flat grey image gets texture from the noise (colour jitter alone keeps each channel flat)
    assert a.std(dim=(1, 2)).min() > 0.01
    assert eval_t(image).std(dim=(1, 2)).max() == 0


def test_ten_crop_averages_the_softmax_of_ten_views_by_hand():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    image = torch.rand(3, 24, 24)
    size, big = 16, round(16 * 256 / 224)
    views_t = build_ten_crop("none", size, from_tensor=True)(image)
    assert views_t.shape == (10, 3, size, size)
    # by hand: resize, the four corners and the centre, then the same of the mirrored image
    from torchvision.transforms.v2 import functional as F

    resized = F.resize(image, [big, big], antialias=True)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    corners = [(0, 0), (0, big - size), (big - size, 0), (big - size, big - size)]
    centre = ((big - size) // 2 + (big - size) % 2, (big - size) // 2 + (big - size) % 2)
    crops = []
    for img in (resized, resized.flip(-1)):
        for top, left in (*corners, centre):
            crops.append((img[:, top : top + size, left : left + size] - mean) / std)
    assert torch.allclose(views_t, torch.stack(crops), atol=1e-6)
    with torch.no_grad():
        hand = torch.stack([model(c[None]).softmax(-1)[0] for c in crops]).mean(0)
        got = views.view_logits(model, views_t[None])[0]
    assert torch.allclose(got.exp(), hand, atol=1e-6)
    assert math.isclose(float(got.exp().sum()), 1.0, rel_tol=1e-6)


def test_eval_split_ten_crop_and_centre(tmp_path):
    data = load_data(DataConfig(image_size=16, eval_crops="ten"))
    assert data.eval_split("test")[0][0].shape == (10, 3, 16, 16)
    assert data.eval_split("test", "center") is data.test
    assert data.test[0][0].shape == (3, 16, 16)  # calibration and timing keep one view
    logits, labels = views.collect_logits(lambda x: torch.zeros(len(x), 10), data.eval_split("val"), 64)
    assert logits.shape == (270, 10) and labels.shape == (270,)


def test_cifar10_subset_in_the_official_layout_loads_and_says_it_is_not_official(tmp_path):
    root = cifar10_tree(tmp_path / "cifar", per_batch=6, test=10)
    data = load_data(DataConfig(name="cifar10", root=root, image_size=32, val_fraction=0.2))
    assert data.class_names == CIFAR10_NAMES and data.num_classes == 10
    assert len(data.train) + len(data.val) == 30 and len(data.test) == 10
    assert data.info["files"].startswith("not the official")
    x, y = data.test[3]
    assert x.shape == (3, 32, 32) and y == 3


def test_cifar10_damaged_or_missing_batch_names_the_fix(tmp_path):
    from qbench.errors import QBenchError

    root = cifar10_tree(tmp_path / "cifar")
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(
        QBenchError, match=r"is damaged \(.*\); replace cifar-10-batches-py/ with a fresh copy"
    ):
        load_data(DataConfig(name="cifar10", root=root, image_size=32))
    batch.unlink()
    with pytest.raises(QBenchError, match="pass --data-root"):
        load_data(DataConfig(name="cifar10", root=root, image_size=32))
