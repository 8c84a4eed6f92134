"""Reference 004's named variants (one short epoch each), torchvision ResNet-18 weights, paper init."""

import importlib.util
from pathlib import Path

import pytest
import torch

from qbench.baselines.architectures import paper_init
from qbench.baselines.checkpoint import import_checkpoint
from qbench.baselines.models import MODELS, create_model
from qbench.baselines.pipeline import BaselineRequest, make_baseline
from qbench.baselines.presets import from_preset
from qbench.errors import QBenchError
from qbench.records import DataConfig
from qbench.workspace import Workspace

_spec = importlib.util.spec_from_file_location("layouts", Path(__file__).parents[1] / "data" / "layouts.py")
layouts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layouts)

VARIANTS = [
    "alexnet-plain",
    "alexnet-dropout",
    "alexnet-bn",
    "alexnet-combined-large",
    "alexnet-small",
    "alexnet-gap",
    "alexnet-paper",
    "resnet18",
]


@pytest.mark.slow
@pytest.mark.parametrize("model", VARIANTS)
def test_one_short_epoch_per_model_variant(model, tmp_path):
    root = layouts.image_tree(tmp_path / "data", per_class=2, splits=("train", "val", "test"), size=8)
    size = 227 if model == "alexnet-paper" else 64  # the paper's net has a fixed 6x6 head
    request = BaselineRequest(
        model=model,
        data=DataConfig(
            name="imagefolder", root=root, image_size=size, augment=MODELS.get(model).augment or "none"
        ),
        train=from_preset("paper", epochs=1, batch_size=4, max_batches=1),
    )
    rec = make_baseline(Workspace(tmp_path / "ws"), request)
    assert rec.model == model and rec.outcome.epochs_trained == 1


def test_reference_004_variants_differ_as_documented():
    plain, drop, bn, large = (
        create_model(m, 200)
        for m in ("alexnet-plain", "alexnet-dropout", "alexnet-bn", "alexnet-combined-large")
    )
    rates = lambda m: [x.p for x in m.modules() if isinstance(x, torch.nn.Dropout)]  # noqa: E731
    has_bn = lambda m: any(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())  # noqa: E731
    assert set(rates(plain)) == {0.0} and set(rates(drop)) == {0.5} and set(rates(bn)) == {0.0}
    assert not has_bn(plain) and has_bn(bn) and has_bn(large) and set(rates(large)) == {0.5}
    assert MODELS.get("alexnet-combined-large").augment == "combined"


def test_torchvision_resnet18_weights_import_unchanged(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    imported = import_checkpoint(tmp_path / "resnet18.pth", "resnet18", 10)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(imported(x), reference(x))
    # a checkpoint of the earlier wrapped layout (net.*) still loads
    torch.save({f"net.{k}": v for k, v in reference.state_dict().items()}, tmp_path / "old.pth")
    assert torch.equal(import_checkpoint(tmp_path / "old.pth", "resnet18", 10)(x), reference(x))


def test_paper_init_sets_the_papers_biases():
    model = paper_init(create_model("alexnet-paper", 10))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [float(c.bias.mean()) for c in convs] == [0.0, 1.0, 0.0, 1.0, 1.0]
    assert [float(fc.bias.mean()) for fc in linears] == [1.0, 1.0, 0.0]
    assert abs(float(convs[0].weight.std()) - 0.01) < 0.001
    with pytest.raises(QBenchError, match="--preset paper"):
        from_preset("reference", paper_init=True)
