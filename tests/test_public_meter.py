"""gi_energy.meter(): a context manager and a decorator on the engine's own backends
(hardware replaced by the shipped fakes)."""

from __future__ import annotations

import pytest

import gi_energy
from gi_energy.errors import MeterError
from gi_energy.meters.estimate import EstimateMeter
from gi_energy.meters.fakes import FakeNvml, FakePowercap, ticking_reader
from gi_energy.meters.nvml import NvmlMeter
from gi_energy.meters.reading import Reading


def _rapl(tmp_path, **kw):
    tree = FakePowercap(tmp_path / "powercap")
    tree.add_zone("intel-rapl:0", "package-0")
    # every read of energy_uj moves the counter 100 mJ on: one window = 0.1 J
    return gi_energy.meter("rapl", powercap_root=tree.root, powercap_read=ticking_reader(100_000),
                           lock_dir=tmp_path / "locks", proc_stat=tmp_path / "no-stat", **kw)


def test_context_manager_on_fake_rapl(tmp_path):
    m = _rapl(tmp_path)
    with m as inside:
        sum(range(1000))
    assert inside is m and isinstance(m.reading, Reading)
    r = m.reading
    assert (r.backend, r.scope, r.measured) == ("rapl", "package", True)
    assert r.energy_j == pytest.approx(0.1) and r.duration_s >= 0 and isinstance(r.warnings, tuple)
    assert m.measured and m.backend == "rapl" and "rapl" in m.describe()
    m.close()


def test_decorator_one_window_per_call(tmp_path):
    m = _rapl(tmp_path)

    @m
    def work(n):
        return n * 2

    assert work(3) == 6 and work(4) == 8
    assert len(m.readings) == 2 and m.energy_j == pytest.approx(0.2)
    assert work.__name__ == "work" and work.meter is m


def test_window_closes_when_the_work_raises(tmp_path):
    m = _rapl(tmp_path)
    with pytest.raises(ZeroDivisionError), m:
        raise ZeroDivisionError("the work failed")
    assert len(m.readings) == 1
    with m:  # the lock was released: a new window opens
        pass
    assert len(m.readings) == 2


def test_fake_nvml_board_energy(tmp_path):
    m = gi_energy.meter("nvml", device="cuda", nvml=FakeNvml(energy_step_mj=250), lock_dir=tmp_path)
    with m:
        pass
    r = m.reading
    assert (r.backend, r.scope, r.measured) == ("nvml", "board", True) and r.energy_j > 0
    m.close()
    # the counter itself (no minimum window): one read each side, 250 mJ apart
    board = NvmlMeter(pynvml=FakeNvml(energy_step_mj=250), lock_dir=tmp_path, visible_devices="",
                      update_period_s=0.0)
    m = gi_energy.Meter(backend_meter=board)
    with m:
        pass
    assert m.reading.energy_j == pytest.approx(0.25) and m.reading.measured


def test_estimate_is_never_a_measurement():
    m = gi_energy.Meter(backend_meter=EstimateMeter(cpu_clock=iter([0.0, 0.5]).__next__))
    with m:
        pass
    r = m.reading
    assert r.backend == "estimate" and r.measured is False and not m.measured
    assert r.energy_j == pytest.approx(5.0)  # 0.5 CPU s x 10 W
    assert "estimated" in r.source


def test_missing_is_none_not_zero(tmp_path):
    m = _rapl(tmp_path)
    m.readings.append(Reading.missing_reading("rapl", "counter wrapped twice"))
    assert m.energy_j is None


def test_bad_arguments_name_the_argument():
    with pytest.raises(MeterError, match="unknown meter 'bogus'"):
        gi_energy.meter("bogus")
    with pytest.raises(MeterError, match="attribution='shared'"):
        gi_energy.meter(attribution="shared")
    with pytest.raises(MeterError, match="cpu_watts_per_core"):
        gi_energy.meter("estimate", cpu_watts_per_core=-1)
