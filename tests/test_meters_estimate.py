"""The estimate meter and the factory's fallback to it."""

from __future__ import annotations

import pytest

from gi_energy.config.problem import EnergyConfig
from gi_energy.errors import MeterError
from gi_energy.meters import EstimateMeter, create_meter


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_estimate_is_cpu_seconds_times_watts_per_core():
    cpu, wall = FakeClock(), FakeClock()
    m = EstimateMeter(cpu_watts_per_core=12.0, cpu_clock=cpu, wall_clock=wall)
    m.start()
    cpu.t, wall.t = 1.5, 1.0  # two threads busy for 0.75 s of wall time each
    r = m.stop()
    assert r.energy_j == pytest.approx(18.0)
    assert r.duration_s == pytest.approx(1.0)
    assert (r.backend, r.scope, r.measured) == ("estimate", "process-estimate", False)


def test_gpu_watts_only_when_configured_and_on_a_gpu():
    cpu, wall = FakeClock(), FakeClock()
    on_gpu = EstimateMeter(cpu_watts_per_core=10.0, gpu_watts=100.0, device="cuda",
                           cpu_clock=cpu, wall_clock=wall)
    on_cpu = EstimateMeter(cpu_watts_per_core=10.0, gpu_watts=100.0, device="cpu",
                           cpu_clock=cpu, wall_clock=wall)
    on_gpu.start()
    on_cpu.start()
    cpu.t, wall.t = 1.0, 2.0
    g, c = on_gpu.stop(), on_cpu.stop()
    assert g.domains_j == {"cpu": 10.0, "gpu": 200.0} and g.energy_j == 210.0
    assert c.domains_j == {"cpu": 10.0}


def test_real_busy_window_is_positive():
    m = create_meter(EnergyConfig(meter="estimate"))
    with m.window() as w:
        sum(i * i for i in range(200_000))
    assert w.reading.energy_j > 0
    assert w.reading.duration_s > 0


def test_window_closes_when_the_work_raises():
    m = create_meter(EnergyConfig(meter="estimate"))
    with pytest.raises(ZeroDivisionError), m.window() as w:
        raise ZeroDivisionError("work failed")
    assert w.reading is not None
    with m.window():  # not left open
        pass


def test_start_twice_is_an_error():
    m = create_meter(EnergyConfig(meter="estimate"))
    m.start()
    with pytest.raises(MeterError):
        m.start()
    m.stop()
    with pytest.raises(MeterError):
        m.stop()


def test_auto_without_hardware_falls_back_to_estimate_with_both_reasons(tmp_path):
    m = create_meter(EnergyConfig(), device="cuda", powercap_root=tmp_path / "none",
                     lock_dir=tmp_path)
    assert m.name == "estimate" and not m.measured
    text = m.describe()
    assert "no RAPL" in text and "no NVML" in text
