"""RAPL through a fake powercap tree: wraps, polling, missing ranges, permissions, zones."""

from __future__ import annotations

import time

import pytest

from gi_energy.config.problem import EnergyConfig
from gi_energy.errors import MeterError
from gi_energy.meters import create_meter
from gi_energy.meters.fakes import FakePowercap, denying_reader, power_reader, ticking_reader
from gi_energy.meters.powercap import counter_delta_uj, discover_zones
from gi_energy.meters.rapl import RaplMeter


@pytest.fixture
def tree(tmp_path) -> FakePowercap:
    return FakePowercap(tmp_path / "powercap")


def rapl(tree: FakePowercap, tmp_path, **kw) -> RaplMeter:
    kw.setdefault("lock_dir", tmp_path / "locks")
    return RaplMeter(powercap_root=tree.root, **kw)


@pytest.mark.parametrize(("prev", "cur", "range_uj", "expected"), [
    (100, 350, 1000, (250, False)),
    (900, 100, 1000, (200, True)),
    (0, 0, 1000, (0, False)),
    (999, 0, 1000, (1, True)),
    (900, 100, None, (None, True)),    # range unknown: dropped, never negative
    (100, 350, None, (250, False)),
])
def test_counter_delta(prev, cur, range_uj, expected):
    assert counter_delta_uj(prev, cur, range_uj) == expected


def test_single_wrap_is_corrected(tree, tmp_path):
    tree.add_zone(energy_uj=900_000, max_energy_range_uj=1_000_000)
    m = rapl(tree, tmp_path)
    m.start()
    tree.set_energy("intel-rapl:0", 100_000)
    r = m.stop()
    assert r.energy_j == pytest.approx(0.2)
    assert r.wraps == 1
    assert (r.backend, r.scope, r.measured) == ("rapl", "package", True)


def test_wrap_caught_by_polling(tree, tmp_path):
    # Two wraps in one window: start and end samples alone would see one wrap (0.4 J);
    # the polling thread sees both (0.5 + 0.55 + 0.35 = 1.4 J).
    tree.add_zone(energy_uj=900_000, max_energy_range_uj=1_000_000)
    m = rapl(tree, tmp_path, poll_interval_s=0.005)
    m.start()
    for value in (400_000, 950_000, 300_000):
        time.sleep(0.08)  # 16 poll intervals: the poller samples each value
        tree.set_energy("intel-rapl:0", value)
    time.sleep(0.08)
    r = m.stop()
    assert r.wraps == 2
    assert r.energy_j == pytest.approx(1.4)


def test_poll_interval_is_a_quarter_of_the_wrap_period(tree, tmp_path):
    tree.add_zone(max_energy_range_uj=262_143_328_850)
    m = rapl(tree, tmp_path)
    assert m.availability().available
    assert m.poll_interval_s == pytest.approx(262_143.32885 / 500.0 / 4)


def test_missing_range_drops_the_wrapped_window_instead_of_going_negative(tree, tmp_path):
    tree.add_zone(energy_uj=900_000, max_energy_range_uj=None)
    m = rapl(tree, tmp_path)
    assert "max_energy_range_uj unreadable" in m.describe()
    m.start()
    tree.set_energy("intel-rapl:0", 100_000)
    r = m.stop()
    assert r.missing and r.energy_j is None
    assert "max_energy_range_uj" in r.missing_reason


def test_missing_range_makes_a_polled_window_with_a_lost_wrap_missing(tree, tmp_path):
    # Polling keeps the intervals around the wrap, but the wrapped one is lost: the sum
    # (0.8 J) is an undercount of unknown size, so the window is missing, not 0.8 J.
    tree.add_zone(energy_uj=100_000, max_energy_range_uj=None)
    m = rapl(tree, tmp_path, poll_interval_s=0.005)
    m.start()
    for value in (500_000, 200_000, 600_000):  # 500k -> 200k wrapped: that interval is lost
        time.sleep(0.08)
        tree.set_energy("intel-rapl:0", value)
    time.sleep(0.08)
    r = m.stop()
    assert r.missing and r.energy_j is None and not r.measured
    assert "counter range unknown" in r.missing_reason
    assert "a wrap could not be corrected" in r.missing_reason
    # The next window, with no wrap, is measured again.
    m.start()
    tree.set_energy("intel-rapl:0", 900_000)
    r = m.stop()
    assert r.energy_j == pytest.approx(0.3)


def test_missing_range_without_a_wrap_is_measured(tree, tmp_path):
    tree.add_zone(energy_uj=100_000, max_energy_range_uj=None)
    m = rapl(tree, tmp_path, poll_interval_s=0.005)
    m.start()
    for value in (300_000, 700_000):
        time.sleep(0.05)
        tree.set_energy("intel-rapl:0", value)
    r = m.stop()
    assert r.energy_j == pytest.approx(0.6) and r.measured and not r.warnings


def test_permission_denied_is_unavailable_with_the_reason_and_auto_falls_back(tree, tmp_path):
    tree.add_zone()
    m = rapl(tree, tmp_path, read=denying_reader({"energy_uj"}))
    av = m.availability()
    assert not av.available
    assert "permission denied" in av.reason and "root" in av.reason
    with pytest.raises(MeterError, match="permission denied"):
        m.start()


def test_factory_falls_back_or_raises_on_permission_denied(tree, tmp_path):
    tree.add_zone()
    denied = denying_reader({"energy_uj"})
    auto = create_meter(EnergyConfig(), powercap_root=tree.root, powercap_read=denied,
                        lock_dir=tmp_path)
    assert auto.name == "estimate" and "no RAPL: permission denied" in auto.describe()
    with pytest.raises(MeterError, match="rapl meter unavailable: permission denied"):
        create_meter(EnergyConfig(meter="rapl"), powercap_root=tree.root, powercap_read=denied,
                     lock_dir=tmp_path)


def test_no_hardware(tmp_path):
    missing = RaplMeter(powercap_root=tmp_path / "absent", lock_dir=tmp_path)
    assert not missing.availability().available
    assert "no powercap directory" in missing.availability().reason
    (tmp_path / "empty").mkdir()
    empty = RaplMeter(powercap_root=tmp_path / "empty", lock_dir=tmp_path)
    assert "no RAPL package zones" in empty.availability().reason


def test_mirrored_die_zones_are_counted_once(tree, tmp_path):
    # A multi-die AMD part: two package zones with the same name mirror one socket.
    tree.add_zone("intel-rapl:0", "package-0", energy_uj=0)
    tree.add_zone("intel-rapl:1", "package-0", energy_uj=0)
    m = rapl(tree, tmp_path, read=ticking_reader(1_000_000))
    with m.window() as w:
        pass
    assert w.reading.domains_j.keys() == {"package-0"}
    assert w.reading.energy_j == pytest.approx(1.0)  # one zone's 1 J, not 2 J
    assert "mirror one socket, counted once" in m.describe()


def test_two_sockets_are_summed_and_distinct_dies_are_not_mirrors(tree, tmp_path):
    tree.add_zone("intel-rapl:0", "package-0-die-0")
    tree.add_zone("intel-rapl:1", "package-0-die-1")
    tree.add_zone("intel-rapl:2", "package-1")
    d = discover_zones(tree.root)
    assert [z.domain for z in d.zones] == ["package-0-die-0", "package-0-die-1", "package-1"]


def test_no_dram_domain(tree, tmp_path):
    tree.add_zone("intel-rapl:0", "package-0")
    tree.add_zone("intel-rapl:0:0", "core")
    m = rapl(tree, tmp_path, read=ticking_reader(500_000))
    with m.window() as w:
        pass
    assert w.reading.domains_j == {"package-0": pytest.approx(0.5)}


def test_dram_is_counted_core_and_psys_are_not(tree, tmp_path):
    tree.add_zone("intel-rapl:0", "package-0")
    tree.add_zone("intel-rapl:0:0", "core")
    tree.add_zone("intel-rapl:0:1", "dram")
    tree.add_zone("intel-rapl:1", "psys")
    tree.add_zone("intel-rapl-mmio:0", "package-0")  # Intel client MMIO mirror
    m = rapl(tree, tmp_path, read=ticking_reader(250_000))
    with m.window() as w:
        pass
    assert w.reading.domains_j == {"package-0": pytest.approx(0.25), "dram-0": pytest.approx(0.25)}
    assert w.reading.energy_j == pytest.approx(0.5)


def write_stat(path, busy_ticks: int, idle_ticks: int = 5000) -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice
    path.write_text(f"cpu  {busy_ticks} 0 0 {idle_ticks} 0 0 0 0 7 0\ncpu0 1 2 3 4\n")


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_cpu_share_apportions_package_energy(tree, tmp_path):
    tree.add_zone(energy_uj=0)
    stat = tmp_path / "stat"
    write_stat(stat, 1000)
    cpu = FakeClock()
    m = rapl(tree, tmp_path, attribution="cpu-share", proc_stat=stat, cpu_clock=cpu,
             ticks_per_s=100)
    m.start()
    tree.set_energy("intel-rapl:0", 40_000_000)  # 40 J on the package
    write_stat(stat, 1400)                      # the machine was busy 4 CPU-seconds
    cpu.t = 1.0                                 # this process used 1 of them
    r = m.stop()
    assert r.scope == "apportioned" and r.measured
    assert r.energy_j == pytest.approx(10.0)
    assert r.domains_j == {"package-0": pytest.approx(10.0)}


def test_cpu_share_clamps_and_reports_a_window_shorter_than_a_tick(tree, tmp_path):
    tree.add_zone(energy_uj=0)
    stat = tmp_path / "stat"
    write_stat(stat, 1000)
    cpu = FakeClock()
    m = rapl(tree, tmp_path, attribution="cpu-share", proc_stat=stat, cpu_clock=cpu,
             ticks_per_s=100)
    m.start()
    tree.set_energy("intel-rapl:0", 1_000_000)
    cpu.t = 0.005
    r = m.stop()
    assert r.missing and "no busy CPU time" in r.missing_reason
    m.start()
    tree.set_energy("intel-rapl:0", 2_000_000)
    write_stat(stat, 1001)
    cpu.t = 0.03  # more than the 0.01 s the machine recorded
    r = m.stop()
    assert r.energy_j == pytest.approx(1.0) and "clamped" in r.warnings[0]


def test_counter_read_failure_is_missing_not_zero(tree, tmp_path):
    zone = tree.add_zone(energy_uj=0)
    m = rapl(tree, tmp_path)
    m.start()
    (zone / "energy_uj").unlink()
    r = m.stop()
    assert r.missing and "read failed" in r.missing_reason


def test_idle_baseline_gives_dynamic_energy(tree, tmp_path):
    tree.add_zone(energy_uj=0)
    m = rapl(tree, tmp_path, idle_baseline_s=0.1, read=power_reader(20.0))
    m.start()  # measures 20 W idle first
    time.sleep(0.05)
    tree.set_energy("intel-rapl:0", 5_000_000)  # 5 J of work above idle
    r = m.stop()
    assert r.idle_power_w == pytest.approx(20.0, rel=0.1)
    assert r.dynamic_energy_j == pytest.approx(5.0, abs=0.1)
    assert r.energy_j == pytest.approx(5.0 + 20.0 * r.duration_s, rel=0.02)


def test_thousands_of_windows_leak_no_threads(tree, tmp_path):
    import threading

    tree.add_zone()
    m = rapl(tree, tmp_path, read=ticking_reader(10))
    before = threading.active_count()
    for _ in range(2000):
        with m.window() as w:
            pass
        assert not w.reading.missing
    assert threading.active_count() == before


def test_cpu_share_idle_baseline_is_the_raw_package_apportioned_like_the_window(tree, tmp_path):
    # The idle sleep uses ~0 CPU: apportioned by that share it would read ~0 W (here:
    # missing, nothing busy). It is metered on the raw package (20 W) and each window is
    # charged its own share of it: dynamic = share x (package energy - 20 W x duration).
    tree.add_zone(energy_uj=0)
    stat = tmp_path / "stat"
    write_stat(stat, 1000)
    cpu = FakeClock()
    m = rapl(tree, tmp_path, attribution="cpu-share", proc_stat=stat, cpu_clock=cpu,
             ticks_per_s=100, idle_baseline_s=0.1, read=power_reader(20.0))
    m.start()
    assert m.idle_power_w == pytest.approx(20.0, rel=0.1)
    tree.set_energy("intel-rapl:0", 40_000_000)  # 40 J of work on top of the idle 20 W
    write_stat(stat, 1400)                      # the machine was busy 4 CPU-seconds
    cpu.t = 1.0                                 # this process used 1 of them: share 0.25
    r = m.stop()
    assert r.scope == "apportioned"
    assert r.dynamic_energy_j == pytest.approx(0.25 * 40.0, abs=0.1)
    assert r.idle_power_w == pytest.approx(0.25 * m.idle_power_w)
    assert r.energy_j - r.idle_power_w * r.duration_s == pytest.approx(r.dynamic_energy_j)
    assert not any("idle" in w for w in r.warnings)
