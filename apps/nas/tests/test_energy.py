"""Energy readers: RAPL parsing on a fake powercap tree (wraparound), unavailable path."""

import pytest

from streamal_nas.energy import EnergyMeter, RaplReader, energy_objective


def _zone(root, name, energy, max_range=1_000_000):
    z = root / name
    z.mkdir(parents=True)
    (z / "energy_uj").write_text(f"{energy}\n")
    (z / "max_energy_range_uj").write_text(f"{max_range}\n")
    return z


def test_rapl_reads_package_zones_only(tmp_path):
    _zone(tmp_path, "intel-rapl:0", 500)
    _zone(tmp_path, "intel-rapl:1", 700)
    _zone(tmp_path, "intel-rapl:0:0", 100)  # sub-zone (core): inside package 0
    (tmp_path / "intel-rapl:2").mkdir()  # unreadable zone: ignored
    reader = RaplReader(tmp_path)
    assert reader.available
    assert reader.read() == {"intel-rapl:0": (500, 1_000_000), "intel-rapl:1": (700, 1_000_000)}


def test_rapl_undoes_counter_wraparound():
    before = {"intel-rapl:0": (999_000, 1_000_000), "intel-rapl:1": (10, 1_000_000)}
    after = {"intel-rapl:0": (1_000, 1_000_000), "intel-rapl:1": (2_000_010, 9_000_000)}
    # zone 0 wrapped: 1_000 + 1_000_000 - 999_000 = 2_000 uJ; zone 1: 2_000_000 uJ
    assert RaplReader.joules_between(before, after) == pytest.approx(2.002)


def test_meter_measures_with_rapl(tmp_path):
    zone = _zone(tmp_path, "intel-rapl:0", 999_500)
    with EnergyMeter(powercap=tmp_path) as meter:
        (zone / "energy_uj").write_text("1500\n")  # wrapped during the block
    assert meter.result.source == "rapl"
    assert meter.result.energy_j == pytest.approx(0.002)


def test_meter_says_unavailable_without_counters(tmp_path):
    with EnergyMeter(gpu=None, powercap=tmp_path / "missing") as meter:
        pass
    assert meter.result.source == "unavailable"
    assert meter.result.energy_j is None
    assert "no readable RAPL" in meter.result.note


def test_energy_objective_falls_back_to_a_flagged_proxy():
    assert energy_objective(12.5, flops=1000, epochs=3) == (12.5, False)
    assert energy_objective(None, flops=1000, epochs=3) == (3000.0, True)
