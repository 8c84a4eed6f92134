"""Checkpoint import and the bad inputs of DESIGN section 6."""

import pytest
import torch

from qbench.baselines.checkpoint import import_checkpoint, load_checkpoint, save_checkpoint
from qbench.baselines.models import create_model
from qbench.errors import QBenchError


def test_roundtrip_keeps_weights_and_meta(tmp_path):
    model = create_model("tiny-cnn", num_classes=4)
    save_checkpoint(tmp_path / "m.pt", model, {"model": "tiny-cnn", "num_classes": 4, "input_size": 32})
    loaded, meta = load_checkpoint(tmp_path / "m.pt")
    assert meta["input_size"] == 32
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_import_accepts_bare_and_wrapped_state_dicts(tmp_path):
    model = create_model("tiny-cnn", num_classes=4)
    torch.save(model.state_dict(), tmp_path / "bare.pth")
    torch.save(
        {"model_state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "w.pth"
    )
    for name in ("bare.pth", "w.pth"):
        imported = import_checkpoint(tmp_path / name, "tiny-cnn", 4)
        assert torch.equal(imported.classifier[-1].weight, model.classifier[-1].weight)


def test_wrong_class_count_names_the_right_one(tmp_path):
    torch.save(create_model("tiny-cnn", num_classes=4).state_dict(), tmp_path / "m.pth")
    with pytest.raises(QBenchError, match=r"has 4 output classes.*--num-classes 4"):
        import_checkpoint(tmp_path / "m.pth", "tiny-cnn", 10)


def test_wrong_architecture(tmp_path):
    torch.save(create_model("tiny-cnn", num_classes=10).state_dict(), tmp_path / "m.pth")
    with pytest.raises(QBenchError, match="does not match architecture 'alexnet'"):
        import_checkpoint(tmp_path / "m.pth", "alexnet", 10)


def test_missing_and_truncated_checkpoints(tmp_path):
    with pytest.raises(QBenchError, match="does not exist"):
        import_checkpoint(tmp_path / "absent.pth", "tiny-cnn", 10)
    torch.save(create_model("tiny-cnn", num_classes=10).state_dict(), tmp_path / "m.pth")
    data = (tmp_path / "m.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(QBenchError, match="corrupt, truncated"):
        import_checkpoint(tmp_path / "cut.pth", "tiny-cnn", 10)


def test_unpickling_refusals_say_what_failed_in_a_few_words(tmp_path):
    """torch's weights-only refusal is a paragraph of advice; the error keeps the line that says
    what failed (a whole pickled model: its class), then the fix."""
    torch.save(torch.nn.Linear(2, 2), tmp_path / "whole-model.pt")
    (tmp_path / "noise.pt").write_bytes(bytes(range(256)))
    with pytest.raises(QBenchError) as whole:
        import_checkpoint(tmp_path / "whole-model.pt", "tiny-cnn", 10)
    message = str(whole.value)
    assert "refused it: Unsupported global: GLOBAL torch.nn.modules.linear.Linear" in message
    assert message.endswith("pass a state-dict checkpoint (torch.save(model.state_dict(), path)).")
    assert "weights_only" not in message and len(message) < 400
    with pytest.raises(QBenchError, match=r"cannot be read \(\S"):
        import_checkpoint(tmp_path / "noise.pt", "tiny-cnn", 10)


def test_plain_state_dict_is_not_a_qbench_checkpoint(tmp_path):
    torch.save(create_model("tiny-cnn", num_classes=10).state_dict(), tmp_path / "m.pth")
    with pytest.raises(QBenchError, match="qbench baseline --import"):
        load_checkpoint(tmp_path / "m.pth")


def test_torchvision_alexnet_weights_import_unchanged(tmp_path):
    """A torchvision AlexNet checkpoint (e.g. alexnet-owt-7be5be79.pth on disk) is a valid baseline."""
    import torchvision

    reference = torchvision.models.alexnet(weights=None, num_classes=10).eval()
    torch.save(reference.state_dict(), tmp_path / "alexnet-owt.pth")
    imported = import_checkpoint(tmp_path / "alexnet-owt.pth", "alexnet", 10)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(imported(x), reference(x))
