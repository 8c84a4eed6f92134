"""The model summary must reproduce the reference documents' numbers exactly."""

from qbench.baselines.models import MODELS, create_model
from qbench.baselines.summary import format_table, summarize

# reference/003: the paper's AlexNet on 227x227, 10 classes (type, output shape, params)
PAPER_TABLE = [
    ("2D Convolution", [-1, 96, 55, 55], 34_944),
    ("ReLU", [-1, 96, 55, 55], 0),
    ("Local response norm", [-1, 96, 55, 55], 0),
    ("2D max pooling", [-1, 96, 27, 27], 0),
    ("2D Convolution", [-1, 256, 27, 27], 614_656),
    ("ReLU", [-1, 256, 27, 27], 0),
    ("Local response norm", [-1, 256, 27, 27], 0),
    ("2D max pooling", [-1, 256, 13, 13], 0),
    ("2D Convolution", [-1, 384, 13, 13], 885_120),
    ("ReLU", [-1, 384, 13, 13], 0),
    ("2D Convolution", [-1, 384, 13, 13], 1_327_488),
    ("ReLU", [-1, 384, 13, 13], 0),
    ("2D Convolution", [-1, 256, 13, 13], 884_992),
    ("ReLU", [-1, 256, 13, 13], 0),
    ("2D max pooling", [-1, 256, 6, 6], 0),
    ("Flatten", [-1, 9216], 0),
    ("Linear", [-1, 4096], 37_752_832),
    ("ReLU", [-1, 4096], 0),
    ("Dropout", [-1, 4096], 0),
    ("Linear", [-1, 4096], 16_781_312),
    ("ReLU", [-1, 4096], 0),
    ("Dropout", [-1, 4096], 0),
    ("Linear", [-1, 10], 40_970),
]


def test_alexnet_matches_reference_000():
    s = summarize(create_model("alexnet", num_classes=2), 224, "alexnet", 2)
    assert s.total_params == 57_012_034
    assert s.trainable_params == 57_012_034
    assert f"{s.flops / 1e6:.3f}M" == "710.119M"
    assert f"{s.size_mb:.2f}" == "217.48"


def test_alexnet_paper_matches_reference_003_table():
    s = summarize(create_model("alexnet-paper", num_classes=10), 227, "alexnet-paper", 10)
    assert [(r.type, r.output_shape, r.params) for r in s.layers] == PAPER_TABLE
    assert s.total_params == 58_322_314
    assert s.non_trainable_params == 0
    assert "Total params: 58,322,314" in format_table(s)


def test_alexnet_accepts_small_and_large_inputs():
    import torch

    model = create_model("alexnet", num_classes=7).eval()
    for size in (64, 224):
        assert model(torch.zeros(2, 3, size, size)).shape == (2, 7)


def test_every_registered_model_builds_and_summarizes():
    for entry in MODELS:
        size = entry.obj.default_input_size
        s = summarize(create_model(entry.name, num_classes=3), size, entry.name, 3)
        assert s.layers[-1].output_shape == [-1, 3]
        assert s.flops > 0 and s.total_params > 0
