"""Unreadable images in folder data sets: named before training, or left out with --skip-bad-images."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest

from qbench.data.imagecheck import MAX_LISTED, load_image
from qbench.data.registry import load_data
from qbench.errors import QBenchError
from qbench.records import DataConfig, TrainRecord


def _tree(root: Path, per_class: int = 6) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                image = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(image).save(root / split / cls / f"{i}.png")


def _config(root: Path, skip: bool = False) -> DataConfig:
    return DataConfig(name="imagefolder", root=root, image_size=16, augment="none", skip_bad_images=skip)


def test_a_corrupt_png_in_val_is_named_before_any_work(tmp_path):
    _tree(tmp_path)
    (tmp_path / "val" / "b" / "broken.png").write_bytes(b"<html>not found</html>")
    with pytest.raises(QBenchError) as err:
        load_data(_config(tmp_path))
    message = str(err.value)
    assert message.startswith("1 image under ") and str(tmp_path / "val" / "b" / "broken.png") in message
    assert "--skip-bad-images" in message and "\n" not in message


def test_skip_bad_images_leaves_them_out_and_counts_them(tmp_path):
    _tree(tmp_path)
    good = (tmp_path / "train" / "a" / "0.png").read_bytes()
    (tmp_path / "train" / "a" / "cut.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "val" / "a" / "zero.png").write_bytes(b"")
    data = load_data(_config(tmp_path, skip=True))
    assert data.skipped_images == 2
    assert data.sizes() == {"train": 12, "val": 6, "test": 6}  # the bad ones are gone, nothing else
    assert data.info["skipped_image_count"] == 2
    assert data.info["skipped_images"] == sorted(
        [str(tmp_path / "train" / "a" / "cut.png"), str(tmp_path / "val" / "a" / "zero.png")]
    )
    assert all(not p.endswith(("cut.png", "zero.png")) for p, _ in data.train.samples)
    # every image left loads
    assert len([data.train_eval[i] for i in range(len(data.train_eval))]) == 12


def test_the_message_caps_the_list_and_gives_the_count(tmp_path):
    _tree(tmp_path, per_class=2)
    for i in range(MAX_LISTED + 3):
        (tmp_path / "train" / "b" / f"bad{i}.jpg").write_bytes(b"x" * i)
    with pytest.raises(QBenchError) as err:
        load_data(_config(tmp_path))
    message = str(err.value)
    assert message.startswith(f"{MAX_LISTED + 3} images under ") and "and 3 more" in message
    assert len(re.findall(r"bad\d\.jpg", message)) == MAX_LISTED


def test_tinyimagenet_val_image_missing_or_corrupt(tmp_path):
    from PIL import Image

    for wnid in ("n01", "n02"):
        (tmp_path / "train" / wnid / "images").mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (16, 16), (i * 40, 0, 0)).save(
                tmp_path / "train" / wnid / "images" / f"{i}.JPEG"
            )
    (tmp_path / "val" / "images").mkdir(parents=True)
    lines = []
    for i in range(6):
        name = f"val_{i}.JPEG"
        Image.new("RGB", (16, 16)).save(tmp_path / "val" / "images" / name)
        lines.append(f"{name}\tn0{i % 2 + 1}")
    (tmp_path / "val" / "images" / "val_5.JPEG").write_bytes(b"\xff\xd8 truncated")
    lines.append("val_gone.JPEG\tn01")
    (tmp_path / "val" / "val_annotations.txt").write_text("\n".join(lines))
    config = DataConfig(name="tinyimagenet", root=tmp_path, image_size=16, augment="none")
    with pytest.raises(QBenchError, match=r"2 images under .*val_5\.JPEG.*val_gone\.JPEG"):
        load_data(config)
    data = load_data(DataConfig(**{**config.to_dict(), "root": tmp_path, "skip_bad_images": True}))
    assert data.skipped_images == 2 and len(data.val) + len(data.test) == 5


def _png_with_bad_pixels(path: Path) -> None:
    """A PNG whose chunks and CRCs are sound (PIL's verify() passes) but whose zlib data is not."""
    from PIL import Image

    Image.new("RGB", (16, 16), (10, 20, 30)).save(path)
    data = bytearray(path.read_bytes())
    at = data.index(b"IDAT")
    length = struct.unpack(">I", data[at - 4 : at])[0]
    body = bytes(b ^ 0x5A for b in data[at + 4 : at + 4 + length])
    crc = struct.pack(">I", zlib.crc32(b"IDAT" + body) & 0xFFFFFFFF)
    data[at + 4 : at + 8 + length] = body + crc
    path.write_bytes(bytes(data))


def test_damage_past_a_readable_header_is_one_sentence_when_loaded(tmp_path):
    path = tmp_path / "pixels.png"
    _png_with_bad_pixels(path)
    from qbench.data.imagecheck import find_unreadable

    assert find_unreadable([path]) == []  # the header check cannot see it ...
    with pytest.raises(QBenchError, match=r"image .*pixels\.png cannot be read .*replace or delete it"):
        load_image(str(path))  # ... the loader names it instead of a PIL traceback


def test_an_image_failing_in_a_loader_worker_is_still_one_sentence(tmp_path):
    from qbench.data.datasets import LabelledFiles
    from qbench.data.registry import loader

    _png_with_bad_pixels(tmp_path / "pixels.png")
    files = LabelledFiles([(tmp_path / "pixels.png", 0)], transform=lambda image: 0)
    with pytest.raises(QBenchError) as err:
        list(loader(files, 1, workers=1))
    assert str(err.value).startswith(f"image {tmp_path / 'pixels.png'} cannot be read (")
    assert "\n" not in str(err.value) and "Traceback" not in str(err.value)


@pytest.mark.slow
def test_baseline_with_skip_bad_images_records_the_count(qbench_cli, tmp_path):
    _tree(tmp_path / "data")
    (tmp_path / "data" / "val" / "a" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    args = ("--model", "tiny-cnn", "--image-size", "16", "--dataset", "imagefolder", "--data-root", "data")
    done = qbench_cli("baseline", *args, "--epochs", "1", "--max-batches", "1", "--skip-bad-images")
    assert done.returncode == 0, done.stderr[-3000:]
    train = TrainRecord.from_json(tmp_path / "runs/default/baseline/train.json")
    assert train.skipped_images == 1 and train.data.skip_bad_images
    assert train.data_info["skipped_images"] == ["data/val/a/corrupt.png"]
    # the choice is part of the baseline's data config: evaluating it leaves the file out again
    done = qbench_cli("evaluate", "--splits", "val")
    assert done.returncode == 0, done.stderr[-3000:]
