import pytest
from PIL import Image

from qbench.data.registry import load_data
from qbench.errors import QBenchError
from qbench.records import DataConfig


def test_digits_split_is_stratified_fixed_and_offline():
    a = load_data(DataConfig(image_size=32, seed=7))
    b = load_data(DataConfig(image_size=32, seed=7))
    assert a.sizes() == {"train": 1257, "val": 270, "test": 270}
    x, y = a.test[0]
    assert x.shape == (3, 32, 32)
    assert (x == b.test[0][0]).all() and y == b.test[0][1]
    test_labels = [int(a.test.labels[i]) for i in range(len(a.test))]
    assert set(test_labels) == set(range(10))  # stratified: every class is in the test split


def test_unknown_dataset():
    with pytest.raises(QBenchError, match=r"unknown dataset 'digit'.*digits"):
        load_data(DataConfig(name="digit"))


def _make_tree(root, classes=("cat", "dog"), per_class=4, splits=("train", "val")):
    for split in splits:
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (20, 20), (i * 40, 10, 200)).save(d / f"{i}.png")


def test_imagefolder_reads_a_local_tree(tmp_path):
    _make_tree(tmp_path)
    data = load_data(DataConfig(name="imagefolder", root=tmp_path, image_size=24, augment="none"))
    assert data.num_classes == 2 and data.class_names == ["cat", "dog"]
    assert len(data.train) == 8 and len(data.val) + len(data.test) == 8
    assert data.train[0][0].shape == (3, 24, 24)


def test_empty_data_folder_is_a_user_error(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    with pytest.raises(QBenchError, match="no images found"):
        load_data(DataConfig(name="imagefolder", root=tmp_path))


def test_missing_folder_and_layout(tmp_path):
    with pytest.raises(QBenchError, match="does not exist"):
        load_data(DataConfig(name="imagefolder", root=tmp_path / "nope"))
    with pytest.raises(QBenchError, match="needs a train/ folder"):
        load_data(DataConfig(name="imagefolder", root=tmp_path))
    with pytest.raises(QBenchError, match="--data-root"):
        load_data(DataConfig(name="imagefolder"))


def _write_idx(path, array):
    """MNIST's IDX format: magic (0, 0, dtype 0x08 = ubyte, ndim), big-endian sizes, then the bytes."""
    import struct

    import numpy as np

    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def test_mnist_reads_a_local_folder_in_the_official_format(tmp_path):
    import numpy as np

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60), ("t10k", 20)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    data = load_data(DataConfig(name="mnist", root=tmp_path, image_size=32, val_fraction=0.2))
    assert data.num_classes == 10
    assert (len(data.train), len(data.val), len(data.test)) == (48, 12, 20)
    assert data.test[0][0].shape == (3, 32, 32)  # grayscale replicated to 3 channels


def test_mnist_missing_without_download_names_the_fix(tmp_path):
    with pytest.raises(QBenchError, match="--download"):
        load_data(DataConfig(name="mnist", root=tmp_path))


def test_tinyimagenet_layout_with_annotated_val(tmp_path):
    wnids = ("n01443537", "n01629819")
    for w in wnids:
        d = tmp_path / "train" / w / "images"
        d.mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (64, 64), (i * 60, 30, 90)).save(d / f"{w}_{i}.JPEG")
    (tmp_path / "val" / "images").mkdir(parents=True)
    lines = []
    for i in range(8):
        Image.new("RGB", (64, 64), (10, i * 20, 50)).save(tmp_path / "val" / "images" / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{wnids[i % 2]}\t0\t0\t63\t63")
    (tmp_path / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    data = load_data(DataConfig(name="tinyimagenet", root=tmp_path, image_size=64, augment="none"))
    assert data.class_names == list(wnids)
    assert (len(data.train), len(data.val), len(data.test)) == (6, 4, 4)
    x, y = data.test[0]
    assert x.shape == (3, 64, 64) and y in (0, 1)
