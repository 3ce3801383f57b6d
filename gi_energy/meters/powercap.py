"""Reading RAPL counters from the Linux powercap tree, and correcting their wraparound.

Layout read (flat, as in /sys/class/powercap)::

    intel-rapl:0/{name,energy_uj,max_energy_range_uj}    name "package-0"
    intel-rapl:0:1/{name,energy_uj,...}                  name "dram" (sub-zone of 0)

Only package zones and DRAM sub-zones are counted: core/uncore sit inside the package
and psys covers the whole platform, so adding them would count joules twice. Multi-die
AMD parts expose several package zones that mirror one socket (same name); each name is
counted once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .units import uj_to_j

ZONE_DIR = re.compile(r"^intel-rapl(?:-mmio)?:(\d+)(?::(\d+))?$")

ReadText = Callable[[Path], str]


def read_text(path: Path) -> str:
    """The default file reader (tests inject their own to simulate permission errors)."""
    with open(path) as f:
        return f.read()


@dataclass(frozen=True)
class Zone:
    """One counted RAPL domain: ``domain`` is "package-0", "dram-0", ..."""

    domain: str
    path: Path
    max_energy_range_uj: int | None
    max_power_w: float | None = None
    mirrors: tuple[Path, ...] = ()

    @property
    def energy_file(self) -> Path:
        return self.path / "energy_uj"


@dataclass(frozen=True)
class Discovery:
    zones: tuple[Zone, ...]
    notes: tuple[str, ...] = ()


def _sort_key(name: str) -> tuple[int, int]:
    m = ZONE_DIR.match(name)
    assert m is not None
    return int(m.group(1)), -1 if m.group(2) is None else int(m.group(2))


def _read_int(path: Path, read: ReadText) -> int | None:
    try:
        return int(read(path).strip())
    except (OSError, ValueError):
        return None


def discover_zones(root: Path, read: ReadText = read_text) -> Discovery:
    """The package and DRAM zones under ``root``; empty when there are none.

    Raises OSError only for the root itself being unreadable; a zone whose ``name`` cannot
    be read is skipped with a note.
    """
    # MMIO zones duplicate the MSR package zones on some Intel client parts under the same
    # name; sorting them last makes them mirrors of the MSR zone, counted once.
    names = sorted((p.name for p in root.iterdir() if ZONE_DIR.match(p.name)),
                   key=lambda n: (n.startswith("intel-rapl-mmio"), *_sort_key(n)))
    zones: dict[str, Zone] = {}
    parent_domain: dict[str, str] = {}
    notes: list[str] = []
    for name in names:
        path = root / name
        try:
            label = read(path / "name").strip()
        except OSError as exc:
            notes.append(f"{name}: unreadable name ({exc.strerror or exc})")
            continue
        prefix, _, sub = name.rpartition(":") if name.count(":") == 2 else (name, "", "")
        if not sub:
            if not label.startswith("package"):
                notes.append(f"{name} ({label}) not counted: it overlaps the packages")
                continue
            domain = label
            parent_domain[name] = domain
        else:
            if label != "dram":
                continue  # core/uncore: already inside the package figure
            parent = parent_domain.get(prefix)
            if parent is None:
                continue  # DRAM of a package that was not counted (e.g. a mirror)
            domain = "dram" + parent[len("package"):]
        if domain in zones:
            z = zones[domain]
            zones[domain] = Zone(z.domain, z.path, z.max_energy_range_uj, z.max_power_w,
                                 z.mirrors + (path,))
            if not sub:
                # A mirrored package's DRAM sub-zone would be the same counter again.
                parent_domain.pop(name, None)
            continue
        range_uj = _read_int(path / "max_energy_range_uj", read)
        power_uw = _read_int(path / "constraint_0_max_power_uw", read)
        zones[domain] = Zone(domain, path, range_uj if range_uj and range_uj > 0 else None,
                             power_uw / 1e6 if power_uw and power_uw > 0 else None)
    for z in zones.values():
        if z.mirrors:
            notes.append(f"{z.domain}: {len(z.mirrors) + 1} zones mirror one socket, counted once")
        if z.max_energy_range_uj is None:
            notes.append(f"{z.domain}: max_energy_range_uj unreadable, a window with a wrap is "
                         "reported missing")
    return Discovery(tuple(zones.values()), tuple(notes))


def counter_delta_uj(previous_uj: int, current_uj: int,
                     max_energy_range_uj: int | None) -> tuple[int | None, bool]:
    """(microjoules between two samples, whether the counter wrapped).

    A counter that went backwards wrapped once at ``max_energy_range_uj``; when that range
    is unknown the interval cannot be corrected and the delta is None (drop the sample:
    a negative or guessed energy would be worse than none).
    """
    if current_uj >= previous_uj:
        return current_uj - previous_uj, False
    if max_energy_range_uj is None:
        return None, True
    return current_uj + max_energy_range_uj - previous_uj, True


@dataclass
class CounterTrack:
    """Running sum of one zone's counter over a window, sample by sample."""

    last_uj: int
    max_energy_range_uj: int | None
    total_uj: int = 0
    wraps: int = 0
    kept: int = 0
    dropped: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, value_uj: int) -> None:
        delta, wrapped = counter_delta_uj(self.last_uj, value_uj, self.max_energy_range_uj)
        self.wraps += int(wrapped)
        if delta is None:
            self.dropped += 1
        else:
            self.total_uj += delta
            self.kept += 1
        self.last_uj = value_uj

    @property
    def energy_j(self) -> float:
        return uj_to_j(self.total_uj)


def wrap_period_s(zone: Zone, assumed_max_power_w: float) -> float | None:
    """Seconds for the counter to wrap at the zone's power ceiling (None: range unknown)."""
    if zone.max_energy_range_uj is None:
        return None
    power_w = max(zone.max_power_w or 0.0, assumed_max_power_w)
    return uj_to_j(zone.max_energy_range_uj) / power_w
