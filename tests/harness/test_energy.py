"""RAPL and NVML energy readers on fake counters: a fake powercap tree and a fake NVML module."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from qbench.harness import energy

MAX_UJ = 262_143_328_850  # a real package's max_energy_range_uj


def _domain(root: Path, name: str, dirname: str, energy_uj: int, max_uj: int = MAX_UJ) -> Path:
    path = root / dirname
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return path


@pytest.fixture
def powercap(tmp_path) -> Path:
    """Two packages, a core sub-domain and a psys domain (neither may be added to the packages)."""
    root = tmp_path / "powercap"
    _domain(root, "package-0", "intel-rapl:0", 1_000_000)
    _domain(root, "core", "intel-rapl:0/intel-rapl:0:0", 500_000)
    _domain(root, "package-1", "intel-rapl:1", 2_000_000)
    _domain(root, "psys", "intel-rapl:2", 9_000_000)
    (root / "intel-rapl").mkdir()  # the control type folder: no counter of its own
    return root


def _set(root: Path, dirname: str, energy_uj: int) -> None:
    (root / dirname / "energy_uj").write_text(f"{energy_uj}\n")


def test_rapl_sums_the_package_domains_only(powercap):
    reader = energy.RaplReader(powercap)
    assert reader.reason is None
    assert [d.name for d in reader.domains] == ["package-0", "package-1"]
    before = reader.read()
    assert before == [1_000_000, 2_000_000]
    _set(powercap, "intel-rapl:0", 4_000_000)  # +3 J
    _set(powercap, "intel-rapl:1", 2_500_000)  # +0.5 J
    _set(powercap, "intel-rapl:2", 99_000_000)  # psys: not counted
    assert reader.joules(before, reader.read()) == pytest.approx(3.5)
    assert reader.source.startswith("RAPL package-0") and "package-1" in reader.source


def test_rapl_counter_wraparound(powercap):
    reader = energy.RaplReader(powercap)
    _set(powercap, "intel-rapl:0", MAX_UJ - 1_000_000)
    before = reader.read()
    _set(powercap, "intel-rapl:0", 2_000_000)  # wrapped: 1 J to the top, then 2 J
    _set(powercap, "intel-rapl:1", 2_000_000)  # unchanged
    assert reader.joules(before, reader.read()) == pytest.approx(3.0)


def test_no_powercap_tree_is_na_with_the_reason(tmp_path):
    reader = energy.RaplReader(tmp_path / "missing")
    assert reader.reason == "n/a (no RAPL counters on this machine)"
    stats = energy.Meter.for_device("cpu", tmp_path / "missing").stats()
    assert stats.source is None and stats.reason == energy.NO_RAPL and stats.points == []


def test_a_tree_without_package_domains_is_na(tmp_path):
    _domain(tmp_path, "psys", "intel-rapl:0", 1)
    assert "no package domain" in energy.RaplReader(tmp_path).reason


def test_an_unreadable_counter_is_na_with_the_reason(powercap, monkeypatch):
    original = Path.read_text

    def root_only(self, *args, **kwargs):
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", root_only)
    reader = energy.RaplReader(powercap)
    assert reader.reason.startswith("n/a (the RAPL counter ")
    assert "readable by root only" in reader.reason and "energy_uj" in reader.reason
    assert energy.Meter.for_device("cpu", powercap).stats().reason == reader.reason


def test_meter_gives_joules_per_image_per_batch_size(powercap):
    clock = iter([10.0, 12.0, 20.0, 24.0])
    meter = energy.Meter.for_device("cpu", powercap)
    meter.clock = lambda: next(clock)
    started = meter.start()
    _set(powercap, "intel-rapl:0", 1_000_000 + 8_000_000)  # 8 J over 2 s
    meter.stop(started, batch_size=4, calls=10)
    started = meter.start()
    _set(powercap, "intel-rapl:1", 2_000_000 + 40_000_000)  # 40 J over 4 s
    meter.stop(started, batch_size=16, calls=5)
    stats = meter.stats()
    assert stats.reason is None and stats.source.startswith("RAPL package-0")
    assert "whole CPU package" in stats.scope and "warm-up" in stats.window
    p4, p16 = stats.at(4), stats.at(16)
    assert (p4.joules, p4.seconds, p4.images) == (pytest.approx(8.0), pytest.approx(2.0), 40)
    assert p4.joules_per_image == pytest.approx(0.2) and p4.watts == pytest.approx(4.0)
    assert p16.joules_per_image == pytest.approx(40 / 80) and p16.watts == pytest.approx(10.0)


def test_a_counter_that_disappears_mid_run_is_na_not_an_error(powercap):
    meter = energy.Meter.for_device("cpu", powercap)
    started = meter.start()
    (powercap / "intel-rapl:1" / "energy_uj").unlink()
    meter.stop(started, batch_size=1, calls=3)
    stats = meter.stats()
    assert stats.points == [] and stats.reason.startswith("n/a (the energy counter could not be read")


def _fake_nvml(counter: list[int], supported: bool = True) -> types.SimpleNamespace:
    class NVMLError(Exception):
        pass

    calls: list[str] = []

    def energy_mj(handle):
        if not supported:
            raise NVMLError("Not Supported")
        assert handle == "handle-GPU-abc"
        return counter[0]

    return types.SimpleNamespace(
        NVMLError=NVMLError,
        calls=calls,
        nvmlInit=lambda: calls.append("init"),
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlDeviceGetHandleByUUID=lambda uuid: f"handle-{uuid}",
        nvmlDeviceGetHandleByIndex=lambda i: f"handle-index-{i}",
        nvmlDeviceGetTotalEnergyConsumption=energy_mj,
    )


def test_nvml_reads_millijoules_of_the_gpu_by_uuid():
    counter = [5_000]
    nvml = _fake_nvml(counter)
    reader = energy.NvmlReader(0, "GPU-abc", nvml=nvml)
    assert reader.reason is None and "GPU-abc" in reader.source
    before = reader.read()
    counter[0] += 2_500  # 2.5 J
    assert reader.joules(before, reader.read()) == pytest.approx(2.5)
    meter = energy.Meter(reader, None)
    started = meter.start()
    counter[0] += 10_000
    meter.stop(started, batch_size=8, calls=5)
    stats = meter.stats()
    assert stats.at(8).joules_per_image == pytest.approx(10.0 / 40)
    assert "whole GPU" in stats.scope
    assert nvml.calls == ["init", "shutdown"]


def test_nvml_without_an_energy_counter_is_na():
    nvml = _fake_nvml([0], supported=False)
    reader = energy.NvmlReader(0, "GPU-abc", nvml=nvml)
    assert reader.reason.startswith("n/a (NVML has no energy counter for GPU GPU-abc")
    assert "Not Supported" in reader.reason
    assert nvml.calls == ["init", "shutdown"]  # NVML counts its inits: the failed reader balanced its own


def test_nvml_not_installed_is_na(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    assert "nvidia-ml-py" in energy.NvmlReader(0).reason
