"""RAPL with pyRAPL as the counter source, and the fallbacks to the powercap files.

The pyRAPL boundary is replaced by ``FakePyRAPL`` (it walks the fake tree as pyRAPL walks
/sys); one test runs the real pyRAPL module with its /sys paths redirected to the tree.
Wrap correction, polling and the rest stay ours whichever source is in use.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from gi_energy.meters.counters import POWERCAP_FILES, PYRAPL, import_pyrapl
from gi_energy.meters.fakes import (
    FakePowercap,
    FakePyRAPL,
    FakePyRAPLCantInitDeviceAPI,
    denying_reader,
    ticking_reader,
)
from gi_energy.meters.rapl import RaplMeter

# The meter's own reader refuses energy_uj: whatever it measures came through pyRAPL.
OWN_READS_DENIED = denying_reader({"energy_uj"})


@pytest.fixture
def tree(tmp_path) -> FakePowercap:
    return FakePowercap(tmp_path / "powercap")


def meter(tree: FakePowercap, tmp_path, pyrapl, **kw) -> RaplMeter:
    kw.setdefault("lock_dir", tmp_path / "locks")
    kw.setdefault("read", OWN_READS_DENIED)
    return RaplMeter(powercap_root=tree.root, pyrapl=pyrapl, **kw)


def test_standard_layout_reads_through_pyrapl_and_our_code_corrects_the_wrap(tree, tmp_path):
    tree.add_zone("intel-rapl:0", "package-0", energy_uj=900_000, max_energy_range_uj=1_000_000)
    tree.add_zone("intel-rapl:0:0", "core")
    tree.add_zone("intel-rapl:0:1", "dram", energy_uj=5_000_000)
    fake = FakePyRAPL(tree.root, sockets=[0])
    m = meter(tree, tmp_path, fake)
    assert m.availability().available, m.availability().reason
    assert m.counter_source == PYRAPL and m.counter_source_note == ""
    assert "via pyRAPL" in m.describe()
    assert {"get_socket_ids", "PkgAPI", "DramAPI"} <= set(fake.calls)
    m.start()
    tree.set_energy("intel-rapl:0", 100_000)       # wrapped at 1 J: 0.2 J, not -0.8 J
    tree.set_energy("intel-rapl:0:1", 5_300_000)   # DRAM: 0.3 J
    r = m.stop()
    assert r.wraps == 1
    assert r.domains_j == {"package-0": pytest.approx(0.2), "dram-0": pytest.approx(0.3)}
    assert r.energy_j == pytest.approx(0.5)
    assert (r.backend, r.scope, r.measured) == ("rapl", "package", True)
    assert fake.calls.count("energy") >= 4  # start and end sample, package and DRAM
    m.close()


def test_wraps_between_samples_are_caught_by_polling_pyrapl(tree, tmp_path):
    tree.add_zone(energy_uj=900_000, max_energy_range_uj=1_000_000)
    m = meter(tree, tmp_path, FakePyRAPL(tree.root), poll_interval_s=0.005)
    m.start()
    for value in (400_000, 950_000, 300_000):
        time.sleep(0.08)
        tree.set_energy("intel-rapl:0", value)
    time.sleep(0.08)
    r = m.stop()
    assert m.counter_source == PYRAPL
    assert r.wraps == 2 and r.energy_j == pytest.approx(1.4)


def test_two_sockets_through_pyrapl_are_summed(tree, tmp_path):
    tree.add_zone("intel-rapl:0", "package-0")
    tree.add_zone("intel-rapl:1", "package-1")
    m = meter(tree, tmp_path, FakePyRAPL(tree.root, sockets=[0, 1],
                                         read=ticking_reader(1_000_000)))
    with m.window() as w:
        pass
    assert m.counter_source == PYRAPL
    assert w.reading.domains_j == {"package-0": pytest.approx(1.0), "package-1": pytest.approx(1.0)}


def test_pyrapl_cant_init_falls_back_to_the_powercap_files_and_says_why(tree, tmp_path):
    tree.add_zone(energy_uj=0)
    fake = FakePyRAPL(tree.root, fail={"PkgAPI": FakePyRAPLCantInitDeviceAPI()})
    m = meter(tree, tmp_path, fake, read=ticking_reader(250_000))
    assert m.availability().available
    assert m.counter_source == POWERCAP_FILES
    assert "PkgAPI raised FakePyRAPLCantInitDeviceAPI" in m.counter_source_note
    assert "via powercap files" in m.describe() and "pyRAPL not used: PkgAPI" in m.describe()
    with m.window() as w:
        pass
    assert w.reading.energy_j == pytest.approx(0.25)


def test_root_only_energy_uj_makes_pyrapl_raise_and_the_backend_unavailable(tree, tmp_path):
    tree.add_zone()
    # pyRAPL opens energy_uj in PkgAPI(): root-only since the PLATYPUS fix, it raises.
    fake = FakePyRAPL(tree.root, read=OWN_READS_DENIED)
    m = meter(tree, tmp_path, fake)
    av = m.availability()
    assert not av.available
    assert "energy_uj is root-only" in av.reason and "permission denied" in av.reason
    assert "pyRAPL not used: PkgAPI raised PermissionError" in av.reason
    assert m.counter_source is None


def test_mirrored_package_zones_use_the_direct_reader_one_zone_per_socket(tree, tmp_path):
    # A multi-die AMD part: two package zones mirror socket 0.
    tree.add_zone("intel-rapl:0", "package-0")
    tree.add_zone("intel-rapl:1", "package-0")
    fake = FakePyRAPL(tree.root, sockets=[0])
    with pytest.raises(FakePyRAPLCantInitDeviceAPI):
        fake.PkgAPI()  # what pyRAPL itself does with this layout
    fake.calls.clear()
    m = meter(tree, tmp_path, fake, read=ticking_reader(1_000_000))
    assert m.availability().available
    assert m.counter_source == POWERCAP_FILES
    assert "2 package zones for 1 socket" in m.counter_source_note
    assert fake.calls == ["get_socket_ids"]  # decided from the topology, pyRAPL not opened
    with m.window() as w:
        pass
    assert w.reading.domains_j.keys() == {"package-0"}
    assert w.reading.energy_j == pytest.approx(1.0)  # one zone's 1 J, not 2 J


def test_zones_not_one_per_socket_use_the_direct_reader(tree, tmp_path):
    tree.add_zone("intel-rapl:0", "package-0-die-0")
    tree.add_zone("intel-rapl:1", "package-0-die-1")
    m = meter(tree, tmp_path, FakePyRAPL(tree.root, sockets=[0, 1]),
              read=ticking_reader(1_000))
    assert m.counter_source == POWERCAP_FILES
    assert "not one per socket" in m.counter_source_note


def test_no_socket_topology_or_no_dram_api_falls_back(tree, tmp_path):
    tree.add_zone("intel-rapl:0", "package-0")
    tree.add_zone("intel-rapl:0:0", "dram")
    no_topology = FakePyRAPL(tree.root, fail={"get_socket_ids": FileNotFoundError(2, "gone")})
    m = meter(tree, tmp_path, no_topology, read=ticking_reader(1_000))
    assert m.counter_source == POWERCAP_FILES and "no socket topology" in m.counter_source_note
    no_dram = FakePyRAPL(tree.root, fail={"DramAPI": FakePyRAPLCantInitDeviceAPI()})
    m = meter(tree, tmp_path, no_dram, read=ticking_reader(1_000))
    assert m.counter_source == POWERCAP_FILES and "DramAPI raised" in m.counter_source_note


def test_pyrapl_read_failure_in_a_window_is_missing_not_zero(tree, tmp_path):
    tree.add_zone()
    fake = FakePyRAPL(tree.root)
    m = meter(tree, tmp_path, fake)
    m.start()
    fake.fail["energy"] = RuntimeError("sensor vanished")
    r = m.stop()
    assert r.missing and "read failed" in r.missing_reason and "sensor vanished" in r.missing_reason


def test_injected_root_without_pyrapl_reads_the_files(tree, tmp_path):
    tree.add_zone()
    m = RaplMeter(powercap_root=tree.root, lock_dir=tmp_path, read=ticking_reader(1_000))
    assert m.counter_source == POWERCAP_FILES
    assert "pyRAPL reads only /sys/class/powercap" in m.counter_source_note


def _redirect_pyrapl_to(monkeypatch, pyrapl, root: Path, sockets: list[int]) -> None:
    """Point the real pyRAPL's hard-coded /sys paths at the flat fake tree."""
    prefix = "/sys/class/powercap/intel-rapl/"

    def move(path: str) -> str:
        if not path.startswith(prefix):
            return path
        parts = path[len(prefix):].split("/")
        zone = [p for p in parts if p.startswith("intel-rapl")][-1]
        return str(root / zone / "/".join(parts[parts.index(zone) + 1:]))

    monkeypatch.setattr(pyrapl.device_api, "get_socket_ids", lambda: list(sockets))
    monkeypatch.setattr(pyrapl.device_api, "open", lambda p, *a: open(move(p), *a),
                        raising=False)
    fake_os = SimpleNamespace(path=SimpleNamespace(exists=lambda p: os.path.exists(move(p))))
    monkeypatch.setattr(pyrapl.device_api, "os", fake_os)


def _overwrite(path, text: str) -> None:
    """Replace a counter file's text in place, never leaving it empty in between."""
    with open(path, "r+") as fh:
        fh.write(text)
        fh.truncate()


def test_the_real_pyrapl_over_a_redirected_tree(tree, tmp_path, monkeypatch):
    pyrapl = import_pyrapl()
    tree.add_zone("intel-rapl:0", "package-0", energy_uj=900_000, max_energy_range_uj=1_000_000)
    tree.add_zone("intel-rapl:0:0", "dram", energy_uj=0)
    _redirect_pyrapl_to(monkeypatch, pyrapl, tree.root, [0])
    fds = len(os.listdir("/proc/self/fd"))
    m = meter(tree, tmp_path, pyrapl)
    assert m.counter_source == PYRAPL, m.counter_source_note
    m.start()
    # In place, not set_energy's rename: pyRAPL keeps each energy_uj open and re-reads it.
    # Overwritten without truncating first: the meter's poller reads these files while the
    # window is open, and a truncated file would read as '' (a failed read: missing).
    _overwrite(tree.root / "intel-rapl:0" / "energy_uj", "100000\n")
    _overwrite(tree.root / "intel-rapl:0:0" / "energy_uj", "700000\n")
    r = m.stop()
    assert r.wraps == 1
    assert r.domains_j == {"package-0": pytest.approx(0.2), "dram-0": pytest.approx(0.7)}
    m.close()  # also closes the files pyRAPL opened and never closes
    assert len(os.listdir("/proc/self/fd")) == fds


def test_importing_pyrapl_is_silent():
    # pyRAPL logs root-logger warnings about pymongo/pandas on import (and that would
    # install a root handler); neither may reach the user.
    code = ("import logging; from gi_energy.meters.counters import import_pyrapl; "
            "m = import_pyrapl(); assert m.__name__ == 'pyRAPL'; "
            "assert not logging.getLogger().handlers, logging.getLogger().handlers")
    out = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
