"""The RAPL meter word for word: its lock per attribution, the fields of a missing
reading, every availability reason, describe(), and the polling thread it starts.

Clocks are fakes, so durations are exact; messages are compared whole.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gi_energy.meters import rapl as rapl_module
from gi_energy.meters.fakes import FakePowercap, FakePyRAPL
from gi_energy.meters.locks import FileLock, NullLock
from gi_energy.meters.rapl import DEFAULT_POLL_S, RaplMeter


class Clock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def tree(tmp_path) -> FakePowercap:
    t = FakePowercap(tmp_path / "powercap")
    t.add_zone("intel-rapl:0", "package-0", energy_uj=1_000_000)
    return t


def write_stat(path: Path, busy_ticks: int) -> None:
    path.write_text(f"cpu  {busy_ticks} 0 0 5000 0 0 0 0 0 0\n")


def test_exclusive_locks_a_file_in_lock_dir_and_cpu_share_locks_nothing(tree, tmp_path):
    m = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path / "locks")
    assert isinstance(m._lock, FileLock)
    assert m._lock.path == tmp_path / "locks" / "rapl.lock"
    with m.window():
        pass
    assert (tmp_path / "locks" / "rapl.lock").is_file()
    m.close()
    shared = RaplMeter(powercap_root=tree.root, attribution="cpu-share", lock_dir=tmp_path / "x")
    assert isinstance(shared._lock, NullLock)
    with pytest.raises(ValueError) as err:
        RaplMeter(powercap_root=tree.root, attribution="shared")
    assert str(err.value) == ("attribution must be one of ('exclusive', 'cpu-share'), "
                              "got 'shared'")


def test_no_idle_baseline_unless_asked(tree, tmp_path):
    m = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path)
    with m.window() as w:
        pass
    assert w.reading.idle_power_w is None and w.reading.dynamic_energy_j is None


def test_a_meter_never_probed_has_no_zones_and_closes(tmp_path):
    m = RaplMeter(powercap_root=tmp_path / "absent", lock_dir=tmp_path)
    assert m.zones == ()
    assert m.poll_interval_s == DEFAULT_POLL_S
    m.close()
    assert m.counter_source is None


@pytest.mark.parametrize(("setup", "reason"), [
    ("absent", "no powercap directory {root} (no intel_rapl driver, or a virtual machine "
               "that exposes no RAPL)"),
    ("empty", "no RAPL package zones under {root}"),
    ("garbage", "cannot read {root}/intel-rapl:0/energy_uj: invalid literal for int() with "
                "base 10: 'garbage' (pyRAPL not used: powercap_root {root} was given and "
                "pyRAPL reads only /sys/class/powercap)"),
])
def test_availability_reasons_word_for_word(tmp_path, setup, reason):
    root = tmp_path / "powercap"
    if setup != "absent":
        root.mkdir()
    if setup == "garbage":
        FakePowercap(root).add_zone()
        (root / "intel-rapl:0" / "energy_uj").write_text("garbage\n")
    av = RaplMeter(powercap_root=root, lock_dir=tmp_path).availability()
    assert av.available is False
    assert av.reason == reason.format(root=root)


def test_an_unlistable_root_is_unavailable_with_the_reason(tree, tmp_path, monkeypatch):
    def refuse(root, read):
        raise PermissionError(13, "Permission denied", str(root))

    monkeypatch.setattr(rapl_module, "discover_zones", refuse)
    av = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path).availability()
    assert (av.available, av.reason) == (False, f"cannot list {tree.root}: Permission denied")


def test_available_has_an_empty_reason_and_uses_the_injected_reader(tree, tmp_path):
    def read(path: Path) -> str:
        return "package-7\n" if path.name == "name" else path.read_text()

    m = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path, read=read)
    assert (m.availability().available, m.availability().reason) == (True, "")
    assert [z.domain for z in m.zones] == ["package-7"]


def test_cpu_share_needs_proc_stat_and_exclusive_does_not(tree, tmp_path):
    missing = tmp_path / "no-stat"
    av = RaplMeter(powercap_root=tree.root, attribution="cpu-share",
                   proc_stat=missing).availability()
    assert (av.available, av.reason) == (
        False, f"cpu-share needs {missing}: [Errno 2] No such file or directory: '{missing}'")
    m = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path, proc_stat=missing)
    assert m.availability().available
    with m.window() as w:
        tree.set_energy("intel-rapl:0", 1_500_000)
    assert w.reading.energy_j == pytest.approx(0.5)


def test_pyrapl_is_imported_for_the_default_root(tree, tmp_path, monkeypatch):
    monkeypatch.setattr(rapl_module, "DEFAULT_POWERCAP_ROOT", tree.root)
    monkeypatch.setattr(rapl_module, "import_pyrapl", lambda: FakePyRAPL(tree.root))
    m = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path)
    assert (m.counter_source, m.counter_source_note) == ("pyRAPL", "")

    def cannot():
        raise ImportError("No module named 'pyRAPL'")

    monkeypatch.setattr(rapl_module, "import_pyrapl", cannot)
    m = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path)
    assert m.counter_source == "powercap files"
    assert m.counter_source_note == "cannot import pyRAPL (No module named 'pyRAPL')"


def test_describe_word_for_word(tmp_path):
    t = FakePowercap(tmp_path / "powercap")
    t.add_zone("intel-rapl:0", "package-0")
    t.add_zone("intel-rapl:0:0", "dram")
    m = RaplMeter(powercap_root=t.root, lock_dir=tmp_path / "locks")
    note = (f"powercap_root {t.root} was given and pyRAPL reads only /sys/class/powercap")
    assert m.describe() == (
        f"rapl: package-0, dram-0 via powercap files {t.root} (pyRAPL not used: {note}), "
        f"exclusive windows (lock {tmp_path / 'locks' / 'rapl.lock'})")
    t.add_zone("intel-rapl:1", "psys")
    t.add_zone("intel-rapl:2", "package-1", max_energy_range_uj=None)
    t.add_zone("intel-rapl:2:0", "dram")
    m = RaplMeter(powercap_root=t.root, attribution="cpu-share",
                  pyrapl=FakePyRAPL(t.root, sockets=[0, 1]))
    m.notes = ("a note of the meter's own",)
    assert m.describe() == (
        f"rapl: package-0, dram-0, package-1, dram-1 via pyRAPL (wrap ranges from {t.root}), "
        "cpu-share (package energy x this process's share of busy CPU time) "
        "[intel-rapl:1 (psys) not counted: it overlaps the packages; package-1: "
        "max_energy_range_uj unreadable, a window with a wrap is reported missing; "
        "a note of the meter's own]")
    gone = RaplMeter(powercap_root=tmp_path / "absent")
    assert gone.describe() == (f"rapl: unavailable (no powercap directory {tmp_path / 'absent'} "
                               "(no intel_rapl driver, or a virtual machine that exposes no "
                               "RAPL))")


def test_the_poller_is_a_named_daemon_thread(tree, tmp_path):
    m = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path, poll_interval_s=60.0)
    m.start()
    pollers = [t for t in threading.enumerate() if t.name == "gi-energy-rapl-poll"]
    assert len(pollers) == 1 and pollers[0].daemon is True
    m.stop()
    assert not [t for t in threading.enumerate() if t.name == "gi-energy-rapl-poll"]


# -- missing readings: backend, scope, duration and reason, exactly ----------------------

def _assert_missing(r, reason: str, duration_s: float) -> None:
    assert (r.backend, r.scope, r.measured, r.energy_j) == ("rapl", "none", False, None)
    assert r.duration_s == pytest.approx(duration_s)
    assert r.missing_reason == reason


def test_a_failed_start_read_is_missing_with_its_duration(tree, tmp_path):
    wall = Clock(100.0)
    m = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path, wall_clock=wall)
    assert m.availability().available
    (tree.root / "intel-rapl:0" / "energy_uj").write_text("garbage\n")
    m.start()
    wall.t = 102.5
    _assert_missing(m.stop(), "counter read failed at the window start: invalid literal for "
                              "int() with base 10: 'garbage'", 2.5)


def test_a_failed_end_read_is_missing_with_its_duration(tree, tmp_path):
    wall = Clock(10.0)
    m = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path, wall_clock=wall)
    m.start()
    (tree.root / "intel-rapl:0" / "energy_uj").write_text("garbage\n")
    wall.t = 11.25
    _assert_missing(m.stop(), "counter read failed during the window: invalid literal for "
                              "int() with base 10: 'garbage'", 1.25)


def test_a_lost_wrap_is_missing_with_its_duration(tmp_path):
    t = FakePowercap(tmp_path / "powercap")
    t.add_zone("intel-rapl:0", "package-0", energy_uj=500, max_energy_range_uj=None)
    wall = Clock(1.0)
    m = RaplMeter(powercap_root=t.root, lock_dir=tmp_path, wall_clock=wall,
                  poll_interval_s=60.0)
    m.start()
    t.set_energy("intel-rapl:0", 100)
    wall.t = 4.0
    _assert_missing(m.stop(), "package-0: counter range unknown (max_energy_range_uj "
                              "unreadable), a wrap could not be corrected (1 of 1 interval(s) "
                              "lost)", 3.0)


def test_cpu_share_missing_readings(tree, tmp_path):
    stat = tmp_path / "stat"
    write_stat(stat, 1000)
    wall, cpu = Clock(0.0), Clock(5.0)
    m = RaplMeter(powercap_root=tree.root, attribution="cpu-share", proc_stat=stat,
                  wall_clock=wall, cpu_clock=cpu, ticks_per_s=100)
    m.start()
    wall.t = 0.5
    _assert_missing(m.stop(), "cpu-share: the machine recorded no busy CPU time in the window "
                              "(shorter than a /proc/stat tick)", 0.5)
    m.start()
    stat.unlink()
    wall.t = 2.0
    _assert_missing(m.stop(), f"cannot read {stat}: [Errno 2] No such file or directory: "
                              f"'{stat}'", 1.5)


def test_cpu_share_uses_the_cpu_seconds_of_the_window_and_the_given_tick_rate(tree, tmp_path):
    # The process clock starts at 5 s: the window's CPU time is 6 - 5 = 1 s. The machine was
    # busy 200 ticks at 50 ticks/s = 4 CPU-seconds: share 1/4 of 40 J.
    stat = tmp_path / "stat"
    write_stat(stat, 1000)
    cpu = Clock(5.0)
    m = RaplMeter(powercap_root=tree.root, attribution="cpu-share", proc_stat=stat,
                  cpu_clock=cpu, ticks_per_s=50)
    m.start()
    tree.set_energy("intel-rapl:0", 41_000_000)
    write_stat(stat, 1200)
    cpu.t = 6.0
    r = m.stop()
    assert r.energy_j == pytest.approx(10.0) and r.scope == "apportioned"
    assert m._share == pytest.approx(0.25)
