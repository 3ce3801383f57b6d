"""NVML through a fake pynvml module: energy counter, power sampling, short windows."""

from __future__ import annotations

import threading
import time

import pytest

from gi_energy.config.problem import EnergyConfig
from gi_energy.errors import MeterError
from gi_energy.meters import create_meter
from gi_energy.meters.fakes import FakeNvml
from gi_energy.meters.nvml import NvmlMeter, integrate_power_j
from gi_energy.meters.nvmldevice import (
    ENERGY_COUNTER,
    POWER_SAMPLING,
    cuda_index,
    visible_device,
)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def nvml_meter(lib: FakeNvml, tmp_path, **kw) -> NvmlMeter:
    kw.setdefault("visible_devices", "")
    return NvmlMeter(pynvml=lib, lock_dir=tmp_path, **kw)


def meter_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("gi-energy")]


def hump(t_start: float, base_w: float = 100.0, peak_w: float = 500.0, rise_s: float = 0.1):
    """Board power over time: base_w, then from t_start a triangle up to peak_w in rise_s
    and back down in rise_s, then base_w again. Its energy above base_w is
    (peak_w - base_w) x rise_s = 40 J with the defaults."""
    def power_w(t: float) -> float:
        x = t - t_start
        if 0 <= x < rise_s:
            return base_w + (peak_w - base_w) * x / rise_s
        if rise_s <= x < 2 * rise_s:
            return peak_w - (peak_w - base_w) * (x - rise_s) / rise_s
        return base_w

    return power_w


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
    assert m.last_method == "power-x-time" and m.last_counter_j == 0


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


# -- instant power in short counter windows -------------------------------------------------
def test_short_window_integrates_instant_power_not_the_coarse_counter(tmp_path):
    lib = FakeNvml(energy_mj=1_000, instant_power_w=100.0)
    m = nvml_meter(lib, tmp_path)
    assert m.availability().available and m.mode == ENERGY_COUNTER and m.instant_power
    assert "windows under 1 s by instant power sampled every 5 ms" in m.describe()
    # 100 W, with a 40 J hump from 50 ms to 250 ms after now: inside the window below.
    t_ref = time.perf_counter()
    lib.instant_power_w = hump(t_ref + 0.05)
    m.start()
    assert m._t0 < t_ref + 0.05
    lib.energy_mj += 3 * 13_000  # meanwhile the counter moved three whole updates
    time.sleep(0.3)
    r = m.stop()
    assert 0.3 <= r.duration_s < 1.0
    # By hand: 100 W over the window plus the hump's 40 J. The trapezoid is exact on the
    # straight pieces; each of the hump's three corners costs at most
    # slope change x gap^2 / 8 (0.025 J at 8000 W/s and 5 ms).
    assert r.energy_j == pytest.approx(100.0 * r.duration_s + 40.0, abs=0.5)
    assert (r.backend, r.scope, r.measured) == ("nvml", "board", True)
    assert r.domains_j == {"gpu-0": r.energy_j}
    assert m.last_method == "instant-power" and m.last_counter_j == pytest.approx(39.0)
    (note,) = r.warnings
    assert note.startswith("energy = instant board power (NVML_FI_DEV_POWER_INSTANT) integrated")
    assert "not the energy counter" in note and "its delta, 39 J, is uncertain by up to" in note
    assert "the value changed" in note
    assert meter_threads() == []


def test_window_under_one_update_integrates_instant_power_not_the_one_second_average(tmp_path):
    # GetPowerUsage (80 W here) is a one-second average on recent boards: it lags a burst.
    lib = FakeNvml(energy_mj=1_000, power_mw=80_000, instant_power_w=200.0)
    m = nvml_meter(lib, tmp_path)
    m.start()
    time.sleep(0.03)
    r = m.stop()
    assert r.energy_j == pytest.approx(200.0 * r.duration_s, rel=1e-3)
    (note,) = r.warnings
    assert "instant board power" in note and "it cannot tell" in note


def test_long_window_still_uses_the_counter_and_the_sampler_stops_early(tmp_path):
    lib = FakeNvml(energy_mj=1_000, instant_power_w=500.0)
    # Counter updates every 20 ms: from 0.2 s on a window spans 10 of them.
    m = nvml_meter(lib, tmp_path, update_period_s=0.02)
    m.start()
    lib.energy_mj += 30_000
    time.sleep(0.35)
    assert meter_threads() == []  # past 0.2 s the samples could not be used: it stopped
    r = m.stop()
    assert r.energy_j == pytest.approx(30.0) and r.warnings == ()
    assert m.last_method == "counter"


def test_without_the_instant_field_short_windows_keep_the_counter_and_its_warning(tmp_path):
    lib = FakeNvml(energy_mj=1_000)  # the field's per-field return is Not Supported
    clock = FakeClock()
    m = nvml_meter(lib, tmp_path, wall_clock=clock)
    assert m.availability().available and not m.instant_power
    assert m.instant_power_reason == "NVML_FI_DEV_POWER_INSTANT unreadable on Fake Tesla V100: Not Supported"
    assert "no instant power: NVML_FI_DEV_POWER_INSTANT unreadable" in m.describe()
    m.start()
    lib.energy_mj += 3 * 12_400
    clock.t += 0.35
    r = m.stop()
    assert r.energy_j == pytest.approx(37.2)
    (warning,) = r.warnings
    assert "3.5 updates" in warning and "+-29%" in warning
    assert lib.calls.count("nvmlDeviceGetFieldValues") == 1  # the probe, not per window
    # A pynvml too old to name the field.
    old = FakeNvml(energy_mj=1_000, instant_power_w=100.0)
    old.NVML_FI_DEV_POWER_INSTANT = None
    m = nvml_meter(old, tmp_path)
    assert m.availability().available and not m.instant_power
    assert m.instant_power_reason == "this pynvml has no NVML_FI_DEV_POWER_INSTANT"
    # Turned off by the caller.
    m = nvml_meter(FakeNvml(instant_power_w=100.0), tmp_path, instant_interval_s=0)
    assert m.availability().available and not m.instant_power
    with pytest.raises(ValueError):
        nvml_meter(FakeNvml(), tmp_path, instant_interval_s=-1)


@pytest.mark.parametrize("how", ["raises", "field error"])
def test_instant_read_failing_mid_window_falls_back_to_the_counter_with_a_warning(tmp_path, how):
    lib = FakeNvml(energy_mj=1_000, instant_power_w=100.0)
    m = nvml_meter(lib, tmp_path)
    m.start()
    lib.energy_mj += 2 * 12_400
    time.sleep(0.05)
    if how == "raises":
        lib.fail["nvmlDeviceGetFieldValues"] = 999
    else:
        lib.instant_power_w = None
    time.sleep(0.15)
    r = m.stop()
    assert not r.missing and r.measured and r.energy_j == pytest.approx(24.8)  # the counter
    coarse, why = r.warnings
    assert "updates of the energy counter" in coarse
    expected = "Unknown Error" if how == "raises" else "Not Supported"
    assert why == f"instant power not used: read failed mid-window ({expected})"
    assert meter_threads() == []
    # The next window tries again.
    lib.fail.clear()
    lib.instant_power_w = 100.0
    m.start()
    time.sleep(0.05)
    r = m.stop()
    assert r.energy_j == pytest.approx(100.0 * r.duration_s, rel=1e-3)
    assert "instant board power" in r.warnings[0]


def test_instant_read_failing_at_the_window_start_or_end_falls_back_too(tmp_path):
    lib = FakeNvml(energy_mj=1_000, instant_power_w=100.0)
    m = nvml_meter(lib, tmp_path)
    assert m.availability().available
    lib.fail["nvmlDeviceGetFieldValues"] = 15
    m.start()
    assert meter_threads() == []  # nothing to sample
    lib.energy_mj += 2 * 12_400
    time.sleep(0.2)
    r = m.stop()
    assert r.energy_j == pytest.approx(24.8)
    assert r.warnings[1] == "instant power not used: read failed at the window start (GPU is lost)"


def test_sparse_instant_samples_are_not_used(tmp_path):
    # A sampler starved to 40 ms gaps resolves no better than the counter's 50 ms updates.
    lib = FakeNvml(energy_mj=1_000, instant_power_w=100.0)
    m = nvml_meter(lib, tmp_path, update_period_s=0.05, instant_interval_s=0.04)
    m.start()
    lib.energy_mj += 4 * 5_000
    time.sleep(0.2)
    r = m.stop()
    assert r.energy_j == pytest.approx(20.0)
    assert r.warnings[1].startswith("instant power not used: sampled too sparsely")


def test_no_sampling_thread_survives_a_failed_close_or_an_idle_baseline(tmp_path):
    def failing_sync() -> None:
        if armed:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    armed = False
    lib = FakeNvml(energy_mj=1_000, energy_step_mj=50, instant_power_w=100.0)
    m = nvml_meter(lib, tmp_path, cuda_sync=failing_sync, idle_baseline_s=0.05)
    m.start()  # the idle baseline's window ran and closed first
    assert meter_threads() == ["gi-energy-nvml-power"]
    armed = True
    with pytest.raises(MeterError, match="illegal memory access"):
        m.stop()
    assert meter_threads() == []
    armed = False
    with pytest.raises(ZeroDivisionError):
        with m.window():
            raise ZeroDivisionError("the work failed")
    assert meter_threads() == []
    with m.window() as w:
        time.sleep(0.02)
    assert not w.reading.missing and w.reading.idle_power_w == pytest.approx(100.0, rel=0.01)
    assert meter_threads() == []
    m.close()
