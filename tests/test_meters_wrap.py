"""RAPL counters by value: per-zone wrap ranges on every zone kind, zone discovery, the
counter arithmetic, and the pyRAPL source's refusals word for word.

Every expected figure is worked out by hand in the test; no test bounds a value.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from gi_energy.meters.counters import (
    PowercapCounters,
    PyRAPLCounters,
    PyRAPLUnusable,
    _why,
    import_pyrapl,
    open_pyrapl,
)
from gi_energy.meters.fakes import (
    FakePowercap,
    FakePyRAPL,
    FakePyRAPLCantInitDeviceAPI,
    denying_reader,
)
from gi_energy.meters.powercap import (
    CounterTrack,
    Zone,
    _sort_key,
    discover_zones,
    wrap_period_s,
)
from gi_energy.meters.rapl import RaplMeter

# Two sockets, each a package and a DRAM zone, every one with its own wrap range (µJ) and
# a start value just under it. In the window every counter wraps once.
#   zone             kind     range       start      end      energy
ZONES = [
    ("intel-rapl:0", "package-0", 1_000_000, 900_000, 100_000, 0.2),    # 1.0 - 0.9 + 0.1
    ("intel-rapl:0:0", "core", 5_000_000, 0, 0, None),                  # inside the package
    ("intel-rapl:0:1", "dram", 400_000, 350_000, 50_000, 0.1),          # 0.4 - 0.35 + 0.05
    ("intel-rapl:1", "package-1", 3_000_000, 2_900_000, 100_000, 0.2),  # 3.0 - 2.9 + 0.1
    ("intel-rapl:1:0", "dram", 700_000, 650_000, 50_000, 0.1),          # 0.7 - 0.65 + 0.05
]
# With the first zone's 1 J range on every zone, dram-0 would read 1.0 - 0.35 + 0.05 =
# 0.7 J, package-1 would read 1.0 - 2.9 + 0.1 < 0, dram-1 0.4 J.
EXPECTED_J = {"package-0": 0.2, "dram-0": 0.1, "package-1": 0.2, "dram-1": 0.1}


@pytest.fixture
def tree(tmp_path) -> FakePowercap:
    t = FakePowercap(tmp_path / "powercap")
    for name, label, range_uj, start, _, _ in ZONES:
        t.add_zone(name, label, energy_uj=start, max_energy_range_uj=range_uj)
    return t


def wrap_every_zone(tree: FakePowercap) -> None:
    for name, _, _, _, end, expected in ZONES:
        if expected is not None:
            tree.set_energy(name, end)


@pytest.mark.parametrize("source", ["powercap files", "pyRAPL"])
def test_every_zone_wraps_at_its_own_range(tree, tmp_path, source):
    kw = {}
    if source == "pyRAPL":
        kw = {"pyrapl": FakePyRAPL(tree.root, sockets=[0, 1]),
              "read": denying_reader({"energy_uj"})}  # every count comes through pyRAPL
    m = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path, poll_interval_s=60.0, **kw)
    assert m.counter_source == source, m.counter_source_note
    assert {z.domain: z.max_energy_range_uj for z in m.zones} == {
        "package-0": 1_000_000, "dram-0": 400_000, "package-1": 3_000_000, "dram-1": 700_000}
    m.start()
    wrap_every_zone(tree)
    r = m.stop()
    assert r.domains_j == pytest.approx(EXPECTED_J)
    assert r.energy_j == pytest.approx(0.6)
    assert r.wraps == 4


def test_polled_wraps_use_each_zones_range(tree, tmp_path):
    # Sampled mid-window by the poller's step (called directly: no timing involved).
    m = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path, poll_interval_s=60.0)
    m.start()
    wrap_every_zone(tree)
    m._poll()
    tree.set_energy("intel-rapl:0:1", 250_000)  # dram-0: +0.2 J more, no wrap
    r = m.stop()
    assert r.domains_j == pytest.approx({**EXPECTED_J, "dram-0": 0.3})
    assert r.wraps == 4


def test_poll_interval_is_a_quarter_of_the_shortest_wrap_period(tree, tmp_path):
    # dram-0: 0.4 J at 500 W (the assumed ceiling) wraps in 0.8 ms; a quarter is 0.2 ms.
    m = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path)
    assert m.availability().available
    assert m.poll_interval_s == pytest.approx(0.4 / 500 / 4)


def test_poll_interval_uses_a_zone_ceiling_above_the_assumed_one(tmp_path):
    t = FakePowercap(tmp_path / "powercap")
    t.add_zone("intel-rapl:0", "package-0", max_energy_range_uj=100_000_000,
               max_power_uw=1_000_000_000)  # 100 J, 1000 W: wraps in 0.1 s
    t.add_zone("intel-rapl:1", "package-1", max_energy_range_uj=150_000_000)  # 150 J / 500 W
    m = RaplMeter(powercap_root=t.root, lock_dir=tmp_path)
    assert m.availability().available
    assert m.poll_interval_s == pytest.approx(0.1 / 4)


def test_a_lost_interval_is_reported_with_its_count(tmp_path):
    t = FakePowercap(tmp_path / "powercap")
    t.add_zone("intel-rapl:0", "package-0", energy_uj=500_000, max_energy_range_uj=None)
    m = RaplMeter(powercap_root=t.root, lock_dir=tmp_path, poll_interval_s=60.0)
    m.start()
    t.set_energy("intel-rapl:0", 600_000)
    m._poll()
    t.set_energy("intel-rapl:0", 100_000)   # wrapped, range unknown: this interval is lost
    m._poll()
    t.set_energy("intel-rapl:0", 300_000)
    r = m.stop()
    assert r.energy_j is None and r.measured is False
    assert r.missing_reason == ("package-0: counter range unknown (max_energy_range_uj "
                                "unreadable), a wrap could not be corrected (1 of 3 "
                                "interval(s) lost)")


# -- the counter arithmetic ---------------------------------------------------------------

def test_counter_track_counts_kept_dropped_and_wraps():
    t = CounterTrack(last_uj=100, max_energy_range_uj=None)
    for value in (300, 50, 80, 20, 60):  # +200, lost, +30, lost, +40
        t.add(value)
    assert (t.total_uj, t.kept, t.dropped, t.wraps, t.last_uj) == (270, 3, 2, 2, 60)
    assert t.energy_j == pytest.approx(270e-6)
    t = CounterTrack(last_uj=900, max_energy_range_uj=1000)
    for value in (100, 600, 500):  # +200 (wrap), +500, +900 (wrap)
        t.add(value)
    assert (t.total_uj, t.kept, t.dropped, t.wraps) == (1600, 3, 0, 2)


def test_wrap_period_takes_the_larger_of_the_zone_and_the_assumed_ceiling():
    zone = Zone("package-0", Path("z"), max_energy_range_uj=2_000_000)  # 2 J
    assert wrap_period_s(zone, 0.5) == pytest.approx(4.0)        # 2 J / 0.5 W
    assert wrap_period_s(zone, 400.0) == pytest.approx(0.005)
    strong = Zone("package-0", Path("z"), 2_000_000, max_power_w=800.0)
    assert wrap_period_s(strong, 400.0) == pytest.approx(0.0025)  # 2 J / 800 W
    assert wrap_period_s(Zone("package-0", Path("z"), None), 400.0) is None


# -- zone discovery -----------------------------------------------------------------------

def test_zones_sort_by_package_then_sub_zone():
    names = ["intel-rapl:1:0", "intel-rapl:0:1", "intel-rapl:1", "intel-rapl:0", "intel-rapl:0:0"]
    assert sorted(names, key=_sort_key) == [
        "intel-rapl:0", "intel-rapl:0:0", "intel-rapl:0:1", "intel-rapl:1", "intel-rapl:1:0"]


def test_discovery_reads_ranges_and_ceilings_in_their_units(tmp_path):
    t = FakePowercap(tmp_path / "powercap")
    t.add_zone("intel-rapl:0", "package-0", max_energy_range_uj=262_143_328_850,
               max_power_uw=125_000_000)                      # 125 W
    t.add_zone("intel-rapl:0:0", "dram", max_energy_range_uj=65_712_999_613, max_power_uw=1)
    t.add_zone("intel-rapl:1", "package-1", max_energy_range_uj=1, max_power_uw=0)
    t.add_zone("intel-rapl:2", "package-2", max_energy_range_uj=0)
    t.add_zone("intel-rapl:3", "package-3", max_energy_range_uj=-5, max_power_uw=-3)
    d = discover_zones(t.root)
    assert [(z.domain, z.path.name, z.max_energy_range_uj, z.max_power_w, z.mirrors)
            for z in d.zones] == [
        ("package-0", "intel-rapl:0", 262_143_328_850, 125.0, ()),
        ("dram-0", "intel-rapl:0:0", 65_712_999_613, 1e-6, ()),
        ("package-1", "intel-rapl:1", 1, None, ()),
        ("package-2", "intel-rapl:2", None, None, ()),
        ("package-3", "intel-rapl:3", None, None, ()),
    ]
    assert d.notes == tuple(
        f"package-{i}: max_energy_range_uj unreadable, a window with a wrap is reported missing"
        for i in (2, 3))


def test_discovery_skips_what_it_must_and_keeps_going(tmp_path):
    t = FakePowercap(tmp_path / "powercap")
    t.add_zone("intel-rapl:0", "package-0")
    t.add_zone("intel-rapl:0:0", "core")               # inside the package: skipped
    t.add_zone("intel-rapl:0:1", "dram")
    t.add_zone("intel-rapl:1", "psys")                 # the platform: skipped with a note
    t.add_zone("intel-rapl:1:0", "dram")               # DRAM of an uncounted zone: skipped
    t.add_zone("intel-rapl:2", "package-1")
    t.add_zone("intel-rapl:3", "package-2")            # its name is unreadable below
    t.add_zone("intel-rapl:4", "package-3")
    t.add_zone("not-a-zone", "package-9")
    unreadable = t.root / "intel-rapl:3" / "name"

    def read(path: Path) -> str:
        if path == unreadable:
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text()

    d = discover_zones(t.root, read)
    assert [(z.domain, z.path.name) for z in d.zones] == [
        ("package-0", "intel-rapl:0"), ("dram-0", "intel-rapl:0:1"),
        ("package-1", "intel-rapl:2"), ("package-3", "intel-rapl:4")]
    assert d.notes == ("intel-rapl:1 (psys) not counted: it overlaps the packages",
                       "intel-rapl:3: unreadable name (Permission denied)")


def test_mirrored_packages_keep_the_first_zones_range_and_drop_the_mirrors_dram(tmp_path):
    t = FakePowercap(tmp_path / "powercap")
    t.add_zone("intel-rapl:0", "package-0", max_energy_range_uj=1_000_000,
               max_power_uw=200_000_000)
    t.add_zone("intel-rapl:0:0", "dram", max_energy_range_uj=400_000)
    t.add_zone("intel-rapl:1", "package-0", max_energy_range_uj=9_000_000)   # a mirror
    t.add_zone("intel-rapl:1:0", "dram", max_energy_range_uj=9_000_000)      # the same DRAM
    t.add_zone("intel-rapl:2", "package-1", max_energy_range_uj=3_000_000)
    t.add_zone("intel-rapl:2:0", "dram", max_energy_range_uj=700_000)
    t.add_zone("intel-rapl:3", "package-0")                                  # a third die
    d = discover_zones(t.root)
    assert [(z.domain, z.path.name, z.max_energy_range_uj, z.max_power_w,
             tuple(p.name for p in z.mirrors)) for z in d.zones] == [
        ("package-0", "intel-rapl:0", 1_000_000, 200.0, ("intel-rapl:1", "intel-rapl:3")),
        ("dram-0", "intel-rapl:0:0", 400_000, None, ()),
        ("package-1", "intel-rapl:2", 3_000_000, None, ()),
        ("dram-1", "intel-rapl:2:0", 700_000, None, ()),
    ]
    assert d.notes == ("package-0: 3 zones mirror one socket, counted once",)


def test_mmio_zones_sort_after_msr_zones_and_mirror_them(tmp_path):
    t = FakePowercap(tmp_path / "powercap")
    t.add_zone("intel-rapl-mmio:0", "package-0", max_energy_range_uj=5)
    t.add_zone("intel-rapl:0", "package-0", max_energy_range_uj=1_000_000)
    d = discover_zones(t.root)
    assert [(z.path.name, z.max_energy_range_uj, tuple(p.name for p in z.mirrors))
            for z in d.zones] == [("intel-rapl:0", 1_000_000, ("intel-rapl-mmio:0",))]
    assert d.notes == ("package-0: 2 zones mirror one socket, counted once",)


# -- the pyRAPL source --------------------------------------------------------------------

def test_powercap_counters_read_each_zone(tree):
    zones = discover_zones(tree.root).zones
    assert PowercapCounters(zones, lambda p: p.read_text()).read_uj() == {
        "package-0": 900_000, "dram-0": 350_000, "package-1": 2_900_000, "dram-1": 650_000}


def test_pyrapl_counters_read_each_socket_by_id(tree):
    zones = discover_zones(tree.root).zones
    counters = open_pyrapl(FakePyRAPL(tree.root, sockets=[0, 1]), zones)
    assert counters.zones == zones
    assert counters.socket_ids == [0, 1]
    assert counters.read_uj() == {
        "package-0": 900_000, "package-1": 2_900_000, "dram-0": 350_000, "dram-1": 650_000}


@pytest.mark.parametrize(("values", "message"), [
    ((5.0,), "pyRAPL returned no package counter for socket 1"),       # tuple too short
    ((5.0, -1.0), "pyRAPL returned no package counter for socket 1"),  # socket not read
])
def test_pyrapl_counters_refuse_a_socket_without_a_counter(values, message):
    api = SimpleNamespace(energy=lambda: values)
    counters = PyRAPLCounters((), [0, 1], api, None)
    with pytest.raises(ValueError) as err:
        counters.read_uj()
    assert str(err.value) == message


def test_pyrapl_counters_translate_a_library_failure():
    def energy():
        raise RuntimeError("bad msr")

    counters = PyRAPLCounters((), [0], SimpleNamespace(), SimpleNamespace(energy=energy))
    counters._apis = [("dram", SimpleNamespace(energy=energy))]
    with pytest.raises(OSError) as err:
        counters.read_uj()
    assert str(err.value) == "pyRAPL dram read failed: RuntimeError: bad msr"


class _File:
    def __init__(self, fail: bool = False) -> None:
        self.closed = False
        self.fail = fail

    def close(self) -> None:
        self.closed = True
        if self.fail:
            raise OSError("already gone")


def test_pyrapl_counters_close_every_file_pyrapl_left_open():
    files = [_File(fail=True), _File(), _File()]
    pkg = SimpleNamespace(_sys_files=files[:2])
    dram = SimpleNamespace(_sys_files=files[2:])
    counters = PyRAPLCounters((), [0], pkg, dram)
    counters.close()
    assert [f.closed for f in files] == [True, True, True]
    assert counters._apis == []
    counters.close()  # twice is harmless


def test_why_names_the_exception_and_its_message():
    assert _why(FakePyRAPLCantInitDeviceAPI()) == "FakePyRAPLCantInitDeviceAPI"
    assert _why(OSError("gone")) == "OSError: gone"


def _stub_pyrapl(tree: FakePowercap, **fail):
    return FakePyRAPL(tree.root, sockets=[0, 1], fail=fail)


@pytest.mark.parametrize(("build", "message"), [
    (lambda t: _stub_pyrapl(t, get_socket_ids=RuntimeError("no cpuinfo")),
     "no socket topology (RuntimeError: no cpuinfo)"),
    (lambda t: FakePyRAPL(t.root, sockets=[]), "no CPU sockets reported"),
    (lambda t: FakePyRAPL(t.root, sockets=[0]),
     "2 package zones for 1 socket(s): the zones mirror (multi-die part), which pyRAPL "
     "would refuse or sum"),
    (lambda t: FakePyRAPL(t.root, sockets=[0, 2]),
     "package zones ['package-0', 'package-1'] are not one per socket [0, 2]"),
    (lambda t: _stub_pyrapl(t, PkgAPI=FakePyRAPLCantInitDeviceAPI()),
     "PkgAPI raised FakePyRAPLCantInitDeviceAPI"),
    (lambda t: _stub_pyrapl(t, DramAPI=FakePyRAPLCantInitDeviceAPI()),
     "DramAPI raised FakePyRAPLCantInitDeviceAPI"),
    (lambda t: _stub_pyrapl(t, energy=OSError("energy_uj vanished")),
     "reading its counters failed (OSError: energy_uj vanished)"),
])
def test_open_pyrapl_says_exactly_why_not(tree, build, message):
    with pytest.raises(PyRAPLUnusable) as err:
        open_pyrapl(build(tree), discover_zones(tree.root).zones)
    assert str(err.value) == message


def test_open_pyrapl_refuses_dram_zones_not_one_per_socket(tmp_path):
    t = FakePowercap(tmp_path / "powercap")
    t.add_zone("intel-rapl:0", "package-0")
    t.add_zone("intel-rapl:1", "package-1")
    t.add_zone("intel-rapl:1:0", "dram")
    with pytest.raises(PyRAPLUnusable) as err:
        open_pyrapl(FakePyRAPL(t.root, sockets=[0, 1]), discover_zones(t.root).zones)
    assert str(err.value) == "DRAM zones ['dram-1'] are not one per socket [0, 1]"


def test_open_pyrapl_closes_the_package_files_when_dram_fails(tree):
    files = [_File(), _File()]
    pyrapl = SimpleNamespace(
        device_api=SimpleNamespace(get_socket_ids=lambda: [1, 0, 1]),
        PkgAPI=lambda: SimpleNamespace(_sys_files=files),
        DramAPI=lambda: (_ for _ in ()).throw(FakePyRAPLCantInitDeviceAPI()))
    with pytest.raises(PyRAPLUnusable, match="^DramAPI raised"):
        open_pyrapl(pyrapl, discover_zones(tree.root).zones)
    assert [f.closed for f in files] == [True, True]


def test_import_pyrapl_leaves_the_root_logger_as_it_was():
    root = logging.getLogger()
    before = list(root.handlers)
    disabled = logging.root.manager.disable
    import_pyrapl()
    assert root.handlers == before
    assert logging.root.manager.disable == disabled
