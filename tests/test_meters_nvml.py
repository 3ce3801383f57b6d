"""NVML through a fake pynvml module: energy counter, power sampling, short windows."""

from __future__ import annotations

import time

import pytest

from gi_energy.errors import MeterError
from gi_energy.meters import create_meter
from gi_energy.meters.fakes import FakeNvml
from gi_energy.meters.nvml import (
    ENERGY_COUNTER,
    POWER_SAMPLING,
    NvmlMeter,
    cuda_index,
    integrate_power_j,
    visible_device,
)
from gi_energy.problem import EnergyConfig


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def nvml_meter(lib: FakeNvml, tmp_path, **kw) -> NvmlMeter:
    kw.setdefault("visible_devices", "")
    return NvmlMeter(pynvml=lib, lock_dir=tmp_path, **kw)


def test_energy_counter_in_millijoules(tmp_path):
    lib = FakeNvml(energy_mj=1_000)
    clock = FakeClock()
    m = nvml_meter(lib, tmp_path, wall_clock=clock)
    assert m.availability().available and m.mode == ENERGY_COUNTER
    m.start()
    lib.energy_mj = 3_500
    clock.t += 1.5
    r = m.stop()
    assert r.energy_j == pytest.approx(2.5)
    assert r.duration_s == pytest.approx(1.5)
    assert (r.backend, r.scope, r.measured) == ("nvml", "board", True)
    assert r.domains_j == {"gpu-0": pytest.approx(2.5)}
    assert r.warnings == ()


def test_window_of_few_counter_updates_says_how_uncertain_it_is(tmp_path):
    # On an H100 the counter moves every 100 ms: a 0.35 s window reads 3 or 4 updates.
    lib = FakeNvml(energy_mj=1_000)
    clock = FakeClock()
    m = nvml_meter(lib, tmp_path, wall_clock=clock, update_period_s=0.1)
    m.start()
    lib.energy_mj += 3 * 12_400  # three updates of 12.4 J
    clock.t += 0.35
    r = m.stop()
    assert r.energy_j == pytest.approx(37.2)  # the counter's delta, not corrected
    assert r.measured
    (warning,) = r.warnings
    assert "3.5 updates" in warning and "+-29%" in warning
    # From ten updates on, no warning.
    m.start()
    lib.energy_mj += 10 * 12_400
    clock.t += 1.0
    assert m.stop().warnings == ()


def test_too_short_window_is_power_times_time_not_zero(tmp_path):
    lib = FakeNvml(energy_mj=1_000, power_mw=80_000)
    clock = FakeClock()
    m = nvml_meter(lib, tmp_path, wall_clock=clock)
    m.start()
    clock.t += 0.02  # 20 ms: the counter has not ticked
    r = m.stop()
    assert r.energy_j == pytest.approx(80.0 * 0.02)
    assert "shorter than the counter" in r.warnings[0]


def test_counter_that_did_not_move_is_power_times_time(tmp_path):
    lib = FakeNvml(energy_mj=1_000, power_mw=60_000)
    clock = FakeClock()
    m = nvml_meter(lib, tmp_path, wall_clock=clock)
    m.start()
    clock.t += 0.3
    r = m.stop()
    assert r.energy_j == pytest.approx(18.0) and "did not move" in r.warnings[0]


def test_pre_volta_board_samples_power(tmp_path):
    lib = FakeNvml(energy_counter=False, power_mw=75_000, name="Fake Tesla K80")
    m = nvml_meter(lib, tmp_path, sample_interval_s=0.005)
    assert m.availability().available and m.mode == POWER_SAMPLING
    assert "pre-Volta" in m.describe()
    with m.window() as w:
        time.sleep(0.1)
    r = w.reading
    assert r.energy_j == pytest.approx(75.0 * r.duration_s, rel=1e-6)
    assert lib.calls.count("nvmlDeviceGetPowerUsage") > 5  # the thread sampled


def test_power_integration_is_trapezoidal_in_watts():
    # mW -> W happens before integration: samples here are already watts.
    assert integrate_power_j([(0.0, 100.0), (1.0, 200.0), (3.0, 200.0)]) == pytest.approx(550.0)
    assert integrate_power_j([(0.0, 100.0)]) == 0.0


def test_no_driver_no_gpu_and_bad_index(tmp_path):
    gone = nvml_meter(FakeNvml(library_found=False), tmp_path).availability()
    assert not gone.available and "no NVIDIA driver" in gone.reason
    none = nvml_meter(FakeNvml(gpus=0), tmp_path).availability()
    assert not none.available and "no NVIDIA GPU" in none.reason
    idx = nvml_meter(FakeNvml(gpus=1), tmp_path, device_index=3).availability()
    assert not idx.available and "NVML sees 1" in idx.reason


def test_board_without_energy_or_power(tmp_path):
    lib = FakeNvml(energy_counter=False, fail={"nvmlDeviceGetPowerUsage": 3})
    av = nvml_meter(lib, tmp_path).availability()
    assert not av.available and "neither energy nor power" in av.reason


def test_read_failure_mid_window_is_missing(tmp_path):
    lib = FakeNvml(energy_step_mj=500)
    m = nvml_meter(lib, tmp_path)
    m.start()
    lib.fail["nvmlDeviceGetTotalEnergyConsumption"] = 15  # GPU is lost
    r = m.stop()
    assert r.missing and "GPU is lost" in r.missing_reason


def test_cuda_sync_at_both_boundaries(tmp_path):
    syncs = []
    m = nvml_meter(FakeNvml(energy_step_mj=500), tmp_path, cuda_sync=lambda: syncs.append(1))
    with m.window():
        assert len(syncs) == 1
    assert len(syncs) == 2


def test_cuda_visible_devices_maps_to_nvml_index(tmp_path):
    assert cuda_index("cuda") == 0 and cuda_index("cuda:2") == 2 and cuda_index("cpu") == 0
    assert visible_device(1, "2,3") == 3
    assert visible_device(0, "GPU-abc") == "GPU-abc"
    assert visible_device(1, None) == 1
    lib = FakeNvml(gpus=4, energy_step_mj=100)
    m = nvml_meter(lib, tmp_path, device_index=1, visible_devices="2,3")
    assert m.availability().available and m.physical == "3"


def test_close_shuts_nvml_down(tmp_path):
    lib = FakeNvml()
    m = nvml_meter(lib, tmp_path)
    m.availability()
    assert lib.initialised == 1
    m.close()
    assert lib.initialised == 0


def test_factory_nvml_rules(tmp_path):
    with pytest.raises(MeterError, match="device is 'cpu'"):
        create_meter(EnergyConfig(meter="nvml"), nvml=FakeNvml())
    with pytest.raises(MeterError, match="no NVIDIA driver"):
        create_meter(EnergyConfig(meter="nvml"), device="cuda", nvml=FakeNvml(library_found=False))
    m = create_meter(EnergyConfig(meter="nvml"), device="cuda", nvml=FakeNvml(), lock_dir=tmp_path)
    assert m.name == "nvml"


def test_a_missing_idle_reading_is_measured_once_not_on_every_window(tmp_path):
    lib = FakeNvml(energy_step_mj=1000)
    m = NvmlMeter(pynvml=lib, lock_dir=tmp_path, visible_devices="", idle_baseline_s=0.05,
                  update_period_s=0.0)
    assert m.availability().available
    calls = []
    measure = m._measure_idle_power_w
    m._measure_idle_power_w = lambda: calls.append(1) or measure()
    lib.fail["nvmlDeviceGetTotalEnergyConsumption"] = 999  # the idle window fails
    with m.window() as w:
        pass
    assert w.reading.missing
    del lib.fail["nvmlDeviceGetTotalEnergyConsumption"]
    for _ in range(3):
        with m.window() as w:
            pass
        r = w.reading
        assert not r.missing and r.idle_power_w is None and r.dynamic_energy_j is None
        assert any("idle reading was missing (NVML read failed" in x for x in r.warnings)
    assert len(calls) == 1
    m.close()
