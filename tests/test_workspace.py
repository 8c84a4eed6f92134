import json
import os

import pytest

from qbench.errors import QBenchError
from qbench.records import SCHEMA_VERSION, DataConfig, RecordError, VariantRecord
from qbench.records.io import read_json_object, write_json
from qbench.registry import Registry
from qbench.workspace import Workspace


def test_write_json_is_atomic_strict_and_readable(tmp_path):
    path = tmp_path / "a" / "rec.json"
    write_json(path, {"x": 1.5, "nan": float("nan")})
    assert read_json_object(path) == {"x": 1.5, "nan": None}  # strict JSON: NaN is written as null
    assert [p.name for p in path.parent.iterdir()] == ["rec.json"]  # no temp file left behind
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_failed_write_keeps_the_previous_record(tmp_path):
    path = tmp_path / "rec.json"
    write_json(path, {"v": 1})
    with pytest.raises(TypeError):
        write_json(path, {"v": object()})
    assert read_json_object(path)["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["rec.json"]


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"schema_version": 99}', "upgrade qbench"),
        ('{"schema_version": 1, "mode": "fp32"}', "an older qbench wrote it"),
    ],
)
def test_corrupt_or_foreign_records_are_user_errors(tmp_path, content, fragment):
    path = tmp_path / "variant.json"
    path.write_text(content)
    with pytest.raises(QBenchError, match=fragment):
        VariantRecord.from_json(path)


def test_missing_record_names_the_step(tmp_path):
    with pytest.raises(QBenchError, match="run the step"):
        VariantRecord.from_json(tmp_path / "nope.json")


def test_config_record_round_trips_and_refuses_unknown_fields(tmp_path):
    config = DataConfig(name="imagefolder", root=tmp_path, image_size=24)
    assert DataConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["root"] == str(tmp_path)  # a path is stored as a string
    with pytest.raises(RecordError, match="unknown field"):
        DataConfig.from_dict({**config.to_dict(), "colour": "red"})


def test_workspace_layout_and_fp32_first(tmp_path):
    ws = Workspace.at(tmp_path, "exp1")
    for mode in ("onnx", "fp32", "bf16"):
        write_json(ws.variant_json(mode), {"schema_version": SCHEMA_VERSION, "mode": mode})
        write_json(ws.result_path(mode), {"schema_version": SCHEMA_VERSION, "mode": mode})
    assert ws.variant_modes() == ["fp32", "bf16", "onnx"]
    assert [p.stem for p in ws.result_paths()] == ["fp32", "bf16", "onnx"]
    assert json.loads(ws.variant_json("bf16").read_text())["mode"] == "bf16"
    with pytest.raises(QBenchError, match="qbench baseline --train"):
        ws.require_baseline()


def test_registry_unknown_name_suggests_and_lists():
    reg: Registry[int] = Registry("model")
    reg.register("alexnet")(1)
    reg.register("resnet18")(2)
    with pytest.raises(QBenchError) as info:
        reg.get("alexnt")
    message = str(info.value)
    assert "did you mean 'alexnet'" in message and "alexnet, resnet18" in message
    with pytest.raises(ValueError):
        reg.register("alexnet")(3)
