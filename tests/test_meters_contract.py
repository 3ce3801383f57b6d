"""One contract every meter keeps, run on every backend (hardware replaced by fakes)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from gi_energy.config.problem import EnergyConfig
from gi_energy.errors import MeterError
from gi_energy.meters import Meter, Reading, create_meter
from gi_energy.meters.combined import combine_readings
from gi_energy.meters.estimate import EstimateMeter
from gi_energy.meters.fakes import FakeNvml, FakePowercap, FakePyRAPL, ticking_reader
from gi_energy.meters.nvml import NvmlMeter
from gi_energy.meters.rapl import RaplMeter
from gi_energy.meters.reading import BACKENDS, SCOPES
from gi_energy.meters.units import mj_to_j, mw_to_w, uj_to_j, us_to_s


def _tree(tmp_path) -> FakePowercap:
    tree = FakePowercap(tmp_path / "powercap")
    tree.add_zone("intel-rapl:0", "package-0")
    tree.add_zone("intel-rapl:0:0", "dram")
    return tree


class StepClock:
    """A clock that moves on by ``step_s`` at every read."""

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s
        self.t = 0.0

    def __call__(self) -> float:
        self.t += self.step_s
        return self.t


def make_estimate(tmp_path) -> Meter:
    # The process CPU clock moves 5 ms between the window's two reads: 0.005 s x 10 W.
    return EstimateMeter(cpu_clock=StepClock(0.005))


def make_rapl(tmp_path) -> Meter:
    return RaplMeter(powercap_root=_tree(tmp_path).root, lock_dir=tmp_path,
                     read=ticking_reader(100_000))


def make_rapl_pyrapl(tmp_path) -> Meter:
    # pyRAPL as the counter source (a fake at the module boundary, over the same tree).
    tree = _tree(tmp_path)
    meter = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path,
                      pyrapl=FakePyRAPL(tree.root, read=ticking_reader(100_000)))
    assert meter.counter_source == "pyRAPL", meter.counter_source_note
    return meter


def make_rapl_cpu_share(tmp_path) -> Meter:
    # The real /proc/stat: the window's busy loop makes the machine's busy ticks advance.
    return RaplMeter(powercap_root=_tree(tmp_path).root, attribution="cpu-share",
                     read=ticking_reader(100_000))


def make_nvml_counter(tmp_path) -> Meter:
    return NvmlMeter(pynvml=FakeNvml(energy_step_mj=50), lock_dir=tmp_path, visible_devices="",
                     update_period_s=0.0)


def make_nvml_power(tmp_path) -> Meter:
    return NvmlMeter(pynvml=FakeNvml(energy_counter=False), lock_dir=tmp_path,
                     visible_devices="", sample_interval_s=0.002)


def make_auto_combined(tmp_path) -> Meter:
    return create_meter(EnergyConfig(), device="cuda", lock_dir=tmp_path,
                        powercap_root=_tree(tmp_path).root, powercap_read=ticking_reader(100_000),
                        nvml=FakeNvml(energy_step_mj=50))


def make_auto_estimate(tmp_path) -> Meter:
    return create_meter(EnergyConfig(), device="cuda", lock_dir=tmp_path,
                        powercap_root=tmp_path / "absent", nvml=FakeNvml(library_found=False))


# The energy each maker's window must read, worked out from its fake, as (joules, absolute
# tolerance): ticking_reader adds 0.1 J to each of the tree's two zones (package-0, dram-0)
# between the window's two samples; FakeNvml's counter moves 50 mJ between its two reads;
# FakeNvml's power is a constant 50 W, integrated over the window's duration. cpu-share
# apportions the package figure by the window's share of busy CPU time (the real
# /proc/stat). The auto estimate uses the real process clock: 10 W/core x the CPU seconds
# the test measured around the window (within 2 ms of them).
EXPECTED_J = {
    "estimate": lambda m, r, cpu_s: (0.05, 1e-12),
    "rapl": lambda m, r, cpu_s: (0.2, 1e-12),
    "rapl_pyrapl": lambda m, r, cpu_s: (0.2, 1e-12),
    "rapl_cpu_share": lambda m, r, cpu_s: (0.2 * m._share, 1e-12),
    "nvml_counter": lambda m, r, cpu_s: (0.05, 1e-12),
    "nvml_power": lambda m, r, cpu_s: (50.0 * r.duration_s, 1e-9),
    # The combined NVML part keeps the default ~100 ms update period, so a 30 ms window is
    # its board power (50 W) x its duration; the RAPL part is 0.2 J as above.
    "auto_combined": lambda m, r, cpu_s: (0.2 + 50.0 * r.parts[1].duration_s, 1e-9),
    "auto_estimate": lambda m, r, cpu_s: (10.0 * cpu_s, 10.0 * 0.002),
}

MAKERS = [make_estimate, make_rapl, make_rapl_pyrapl, make_rapl_cpu_share, make_nvml_counter,
          make_nvml_power, make_auto_combined, make_auto_estimate]


def busy(duration_s: float) -> None:
    end = time.perf_counter() + duration_s
    while time.perf_counter() < end:
        pass


@pytest.mark.parametrize("make", MAKERS, ids=lambda f: f.__name__[5:])
def test_meter_contract(make, tmp_path):
    meter = make(tmp_path)
    av = meter.availability()
    assert av.available, av.reason
    assert meter.availability() is av  # cached
    text = meter.describe()
    assert text and "\n" not in text

    cpu0_s = time.process_time()
    with meter.window() as w:
        busy(0.03)
    cpu_s = time.process_time() - cpu0_s
    r = w.reading
    assert isinstance(r, Reading)
    assert r.backend in BACKENDS and r.scope in SCOPES
    assert r.measured == meter.measured
    assert r.energy_j is not None, r.missing_reason
    expected_j, tolerance_j = EXPECTED_J[make.__name__[5:]](meter, r, cpu_s)
    assert r.energy_j == pytest.approx(expected_j, rel=0, abs=tolerance_j)
    assert r.duration_s >= 0.03
    assert sum(r.domains_j.values()) == pytest.approx(r.energy_j)
    assert r.power_w == pytest.approx(r.energy_j / r.duration_s)
    assert Reading.from_dict(r.to_dict()) == r

    # Closed even when the work fails, and reusable afterwards.
    with pytest.raises(RuntimeError), meter.window() as w:
        raise RuntimeError("work failed")
    assert w.reading is not None
    with pytest.raises(MeterError):
        meter.stop()

    # Many windows in one process: no thread or descriptor leaks.
    threads, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))
    for _ in range(300):
        with meter.window() as w:
            pass
        assert w.reading.duration_s >= 0
    assert threading.active_count() == threads
    assert len(os.listdir("/proc/self/fd")) == fds
    meter.close()


def broken_rapl(tmp_path):
    tree = _tree(tmp_path)
    return (RaplMeter(powercap_root=tree.root, lock_dir=tmp_path),
            lambda: (tree.root / "intel-rapl:0:0" / "energy_uj").unlink(), "read failed")


def broken_rapl_pyrapl(tmp_path):
    tree = _tree(tmp_path)
    fake = FakePyRAPL(tree.root)
    meter = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path, pyrapl=fake)
    return meter, lambda: fake.fail.update(energy=OSError("msr gone")), "msr gone"


def broken_rapl_cpu_share(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  1000 0 0 5000 0 0 0 0 0 0\n")
    meter = RaplMeter(powercap_root=_tree(tmp_path).root, attribution="cpu-share",
                      proc_stat=stat)
    return meter, stat.unlink, f"cannot read {stat}"


def broken_nvml_counter(tmp_path):
    nvml = FakeNvml(energy_step_mj=50)
    meter = NvmlMeter(pynvml=nvml, lock_dir=tmp_path, visible_devices="", update_period_s=0.0)
    return (meter, lambda: nvml.fail.update(nvmlDeviceGetTotalEnergyConsumption=15),
            "GPU is lost")


def broken_nvml_power(tmp_path):
    nvml = FakeNvml(energy_counter=False)
    meter = NvmlMeter(pynvml=nvml, lock_dir=tmp_path, visible_devices="",
                      sample_interval_s=60.0)
    return meter, lambda: nvml.fail.update(nvmlDeviceGetPowerUsage=15), "GPU is lost"


def broken_auto_combined(tmp_path):
    tree = _tree(tmp_path)
    meter = create_meter(EnergyConfig(), device="cuda", lock_dir=tmp_path,
                         powercap_root=tree.root, nvml=FakeNvml(energy_step_mj=50))
    # The NVML part read fine and keeps its domain; the RAPL part's domains are gone.
    return (meter, lambda: (tree.root / "intel-rapl:0" / "energy_uj").unlink(),
            "read failed", {"gpu-0"})


# Every backend whose reads can fail; the estimate reads only this process's clocks.
BROKEN = [broken_rapl, broken_rapl_pyrapl, broken_rapl_cpu_share, broken_nvml_counter,
          broken_nvml_power, broken_auto_combined]


@pytest.mark.parametrize("make", BROKEN, ids=lambda f: f.__name__[7:])
def test_a_failed_read_is_missing_never_zero(make, tmp_path):
    meter, break_it, reason, *kept = make(tmp_path)
    meter.start()
    break_it()
    r = meter.stop()
    assert r.energy_j is None and r.missing
    assert r.measured is False and r.power_w is None
    assert set(r.domains_j) == (kept[0] if kept else set())
    assert reason in r.missing_reason
    assert Reading.from_dict(r.to_dict()).energy_j is None
    assert r.to_dict()["energy_j"] is None
    meter.close()


@pytest.mark.parametrize("make", [
    lambda p: RaplMeter(powercap_root=p / "absent", lock_dir=p),
    lambda p: NvmlMeter(pynvml=FakeNvml(library_found=False), lock_dir=p),
], ids=["rapl", "nvml"])
def test_unavailable_meter_refuses_a_window(make, tmp_path):
    meter = make(tmp_path)
    assert not meter.availability().available and meter.availability().reason
    with pytest.raises(MeterError, match="unavailable"):
        meter.start()


def test_auto_on_gpu_combines_rapl_and_nvml(tmp_path):
    m = make_auto_combined(tmp_path)
    with m.window() as w:
        pass
    r = w.reading
    assert r.backend == "combined" and r.measured
    assert [p.backend for p in r.parts] == ["rapl", "nvml"]
    assert r.energy_j == pytest.approx(sum(p.energy_j for p in r.parts))
    assert "rapl:" in m.describe() and "nvml:" in m.describe()


def test_auto_on_gpu_without_rapl_uses_nvml_alone_and_says_so(tmp_path):
    m = create_meter(EnergyConfig(), device="cuda:0", lock_dir=tmp_path,
                     powercap_root=tmp_path / "absent", nvml=FakeNvml(energy_step_mj=5))
    assert m.name == "nvml" and "CPU package energy is not included" in m.describe()


def test_auto_on_gpu_without_nvml_uses_rapl_alone_and_warns_on_every_reading(tmp_path):
    m = create_meter(EnergyConfig(), device="cuda", lock_dir=tmp_path,
                     powercap_root=_tree(tmp_path).root, powercap_read=ticking_reader(100_000),
                     nvml=FakeNvml(library_found=False))
    assert m.name == "rapl"
    assert "no NVML: NVML cannot start" in m.describe()
    assert "GPU board energy is not included" in m.describe()
    for _ in range(2):
        with m.window() as w:
            pass
        assert not w.reading.missing
        assert any(x.startswith("GPU board energy not included: no NVML: NVML cannot start")
                   for x in w.reading.warnings), w.reading.warnings
    m.close()


def test_auto_on_cpu_with_rapl_has_no_gpu_warning(tmp_path):
    m = create_meter(EnergyConfig(), device="cpu", lock_dir=tmp_path,
                     powercap_root=_tree(tmp_path).root, powercap_read=ticking_reader(100_000),
                     nvml=FakeNvml(library_found=False))
    with m.window() as w:
        pass
    assert not any("GPU" in x for x in w.reading.warnings) and "GPU" not in m.describe()
    m.close()


def test_combined_reading_is_missing_when_a_part_is():
    ok = Reading("rapl", "package", True, 2.0, 1.0, {"package-0": 2.0})
    gone = Reading.missing_reading("nvml", "GPU is lost", 1.0)
    r = combine_readings([ok, gone])
    assert r.energy_j is None and "GPU is lost" in r.missing_reason
    both = combine_readings([ok, Reading("nvml", "board", True, 3.0, 1.0, {"gpu-0": 3.0})])
    assert both.energy_j == 5.0 and both.domains_j == {"package-0": 2.0, "gpu-0": 3.0}


@pytest.mark.parametrize(("fn", "value", "expected"), [
    (uj_to_j, 262_143_328_850, 262_143.32885),  # a powercap range, µJ -> J
    (mj_to_j, 1_500, 1.5),                      # NVML energy counter, mJ -> J
    (mw_to_w, 75_000, 75.0),                    # NVML power, mW -> W
    (us_to_s, 2_500_000, 2.5),                  # NVML sample time stamps, µs -> s
])
def test_unit_conversions(fn, value, expected):
    assert fn(value) == pytest.approx(expected)
