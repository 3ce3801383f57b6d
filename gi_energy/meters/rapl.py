"""RAPL: CPU package (and DRAM) energy from the RAPL counters.

The raw counters come from pyRAPL (the project's RAPL dependency) where its assumptions
hold, else from the powercap files directly (``counters.py`` says which and why; so does
``describe()``). pyRAPL never corrects wraparound, so whichever source is in use this
module adds: wrap correction with each zone's ``max_energy_range_uj`` (read from the
powercap tree), a polling thread for windows longer than a wrap period, the exclusive
lock or cpu-share attribution, and the idle baseline (under cpu-share: measured on the
raw package, then apportioned by each window's share). Where a zone states no range, a
window in which its counter went backwards is reported missing, never as a partial sum.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import Availability, Meter
from .counters import (
    CounterSource,
    PowercapCounters,
    PyRAPLUnusable,
    import_pyrapl,
    open_pyrapl,
)
from .cpushare import clock_ticks_per_s, cpu_share, read_busy_ticks
from .locks import FileLock, NullLock, default_lock_dir
from .powercap import (
    CounterTrack,
    Discovery,
    ReadText,
    Zone,
    discover_zones,
    read_text,
    wrap_period_s,
)
from .reading import Reading

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
DEFAULT_PROC_STAT = Path("/proc/stat")
ASSUMED_MAX_POWER_W = 500.0
"""Power ceiling per zone for the wrap period when the zone states none (conservative)."""
DEFAULT_POLL_S = 60.0
"""Polling interval when no zone states its wrap range (nothing to correct with anyway)."""
ATTRIBUTIONS = ("exclusive", "cpu-share")

PERMISSION_HINT = ("energy_uj is root-only since the 2020 PLATYPUS fix (CVE-2020-8694); run as "
                   "root or make the files readable (sudo chmod o+r /sys/class/powercap/*/energy_uj)")


class RaplMeter(Meter):
    """Package + DRAM energy of every socket, for the whole machine or apportioned.

    ``attribution="exclusive"`` holds a lock on ``lock_dir/rapl.lock`` for each window;
    ``"cpu-share"`` scales the energy by this process's share of busy CPU time (scope
    "apportioned"). A polling thread samples the counters every ``poll_interval_s`` (by
    default a quarter of the shortest wrap period) so long windows catch every wrap.

    The idle baseline under cpu-share: the idle sleep is metered on the raw package
    energy (apportioning it by the sleeping process's ~0 CPU share would give ~0 W), and
    each window is charged the same share of it as of the package energy, so
    ``dynamic_energy_j = share x (package energy - idle power x duration)``. The reading's
    ``idle_power_w`` is then that apportioned idle power (share x package idle power),
    so ``energy_j - idle_power_w x duration_s = dynamic_energy_j`` holds as for every
    meter; ``meter.idle_power_w`` is the package's.

    ``pyrapl`` is a pyRAPL-like module (tests pass ``fakes.FakePyRAPL``); left None, the
    real pyRAPL is imported when ``powercap_root`` is /sys/class/powercap, the only tree
    it reads. ``counter_source`` / ``counter_source_note`` say which source was chosen.
    """

    name = "rapl"
    measured = True

    def __init__(self, *, powercap_root: Path = DEFAULT_POWERCAP_ROOT,
                 proc_stat: Path = DEFAULT_PROC_STAT, attribution: str = "exclusive",
                 lock_dir: Path | None = None, idle_baseline_s: float = 0.0,
                 poll_interval_s: float | None = None, read: ReadText = read_text,
                 cpu_clock: Callable[[], float] = time.process_time,
                 wall_clock: Callable[[], float] = time.perf_counter,
                 ticks_per_s: int | None = None, pyrapl: Any | None = None) -> None:
        if attribution not in ATTRIBUTIONS:
            raise ValueError(f"attribution must be one of {ATTRIBUTIONS}, got {attribution!r}")
        lock = (FileLock(lock_dir or default_lock_dir(), "rapl.lock")
                if attribution == "exclusive" else NullLock())
        super().__init__(lock=lock, idle_baseline_s=idle_baseline_s)
        self.root = Path(powercap_root)
        self.proc_stat = Path(proc_stat)
        self.attribution = attribution
        self._read = read
        self._cpu_clock = cpu_clock
        self._wall_clock = wall_clock
        self._ticks_per_s = ticks_per_s
        self._poll_interval_s = poll_interval_s
        self._discovery = Discovery(())
        self._pyrapl = pyrapl
        self._counters: CounterSource | None = None
        self._pyrapl_note = ""
        # Per-window state, only touched by the window's thread and its poller.
        self._tracks: dict[str, CounterTrack] = {}
        self._error: str | None = None
        self._t0 = 0.0
        self._cpu0_s = 0.0
        self._busy0 = 0
        self._share = 1.0  # the last window's cpu-share fraction
        self._raw = False  # True while the idle baseline is metered (no apportioning)
        self._stop_polling = threading.Event()
        self._poller: threading.Thread | None = None

    # -- availability -------------------------------------------------------------------
    def _probe(self) -> Availability:
        if not self.root.is_dir():
            return Availability(False, f"no powercap directory {self.root} (no intel_rapl driver, "
                                       "or a virtual machine that exposes no RAPL)")
        try:
            self._discovery = discover_zones(self.root, self._read)
        except OSError as exc:
            return Availability(False, f"cannot list {self.root}: {exc.strerror or exc}")
        if not self._discovery.zones:
            return Availability(False, f"no RAPL package zones under {self.root}")
        self._counters = self._pyrapl_counters()
        if self._counters is None:
            # The direct reader: also where pyRAPL raised on energy_uj, so an unreadable
            # counter is reported here with the reason.
            for zone in self._discovery.zones:
                try:
                    int(self._read(zone.energy_file).strip())
                except PermissionError:
                    return self._unavailable(f"permission denied reading {zone.energy_file}: "
                                             f"{PERMISSION_HINT}")
                except (OSError, ValueError) as exc:
                    return self._unavailable(f"cannot read {zone.energy_file}: {exc}")
            self._counters = PowercapCounters(self._discovery.zones, self._read)
        if self.attribution == "cpu-share":
            try:
                read_busy_ticks(self.proc_stat)
            except (OSError, ValueError) as exc:
                self._counters.close()
                return Availability(False, f"cpu-share needs {self.proc_stat}: {exc}")
        return Availability(True, "")

    def _unavailable(self, reason: str) -> Availability:
        note = f" (pyRAPL not used: {self._pyrapl_note})" if self._pyrapl_note else ""
        return Availability(False, reason + note)

    def _pyrapl_counters(self) -> CounterSource | None:
        """pyRAPL as the source where its assumptions hold; else None with the reason kept."""
        pyrapl = self._pyrapl
        if pyrapl is None:
            if self.root != DEFAULT_POWERCAP_ROOT:
                self._pyrapl_note = (f"powercap_root {self.root} was given and pyRAPL reads "
                                     f"only {DEFAULT_POWERCAP_ROOT}")
                return None
            try:
                pyrapl = import_pyrapl()
            except ImportError as exc:
                self._pyrapl_note = f"cannot import pyRAPL ({exc})"
                return None
        try:
            return open_pyrapl(pyrapl, self._discovery.zones)
        except PyRAPLUnusable as exc:
            self._pyrapl_note = str(exc)
            return None

    @property
    def counter_source(self) -> str | None:
        """The counter source, "pyRAPL" or "powercap files"; None when unavailable."""
        av = self.availability()
        return self._counters.name if av.available and self._counters is not None else None

    @property
    def counter_source_note(self) -> str:
        """Why pyRAPL is not the source ("" when it is)."""
        self.availability()
        return self._pyrapl_note

    @property
    def zones(self) -> tuple[Zone, ...]:
        return self._discovery.zones

    @property
    def poll_interval_s(self) -> float:
        """A quarter of the shortest wrap period: at most one wrap between two samples."""
        if self._poll_interval_s is not None:
            return self._poll_interval_s
        periods = [p for z in self.zones if (p := wrap_period_s(z, ASSUMED_MAX_POWER_W))]
        return min(periods) / 4 if periods else DEFAULT_POLL_S

    # -- window -------------------------------------------------------------------------
    def _sample(self) -> dict[str, int]:
        assert self._counters is not None  # start() requires availability
        return self._counters.read_uj()

    def _poll(self) -> None:
        """Add one sample to every track (the polling thread's step; tests call it too)."""
        try:
            values = self._sample()
        except (OSError, ValueError) as exc:
            self._error = self._error or f"counter read failed during the window: {exc}"
            return
        for domain, value in values.items():
            self._tracks[domain].add(value)

    def _poll_loop(self, interval_s: float) -> None:
        while not self._stop_polling.wait(interval_s):
            self._poll()

    def _begin(self) -> None:
        self._error = None
        try:
            values = self._sample()
            busy0 = read_busy_ticks(self.proc_stat) if self.attribution == "cpu-share" else 0
        except (OSError, ValueError) as exc:
            self._tracks = {}
            self._error = f"counter read failed at the window start: {exc}"
            self._t0 = self._wall_clock()
            return
        # The time stamps sit right beside the counter samples so power = energy / duration
        # holds; starting the poller is inside the window, as the meter's own overhead.
        self._t0 = self._wall_clock()
        self._cpu0_s = self._cpu_clock()
        self._tracks = {z.domain: CounterTrack(values[z.domain], z.max_energy_range_uj)
                        for z in self.zones}
        self._busy0 = busy0
        self._stop_polling.clear()
        self._poller = threading.Thread(target=self._poll_loop, args=(self.poll_interval_s,),
                                        name="gi-energy-rapl-poll", daemon=True)
        self._poller.start()

    def _cancel(self) -> None:
        if self._poller is not None:
            self._stop_polling.set()
            self._poller.join()
            self._poller = None

    def _end(self) -> Reading:
        self._cancel()
        if self._error is None:
            self._poll()
        duration_s = max(0.0, self._wall_clock() - self._t0)
        cpu_s = self._cpu_clock() - self._cpu0_s
        if self._error is not None:
            return Reading.missing_reading("rapl", self._error, duration_s)
        warnings: list[str] = []
        for domain, track in self._tracks.items():
            if track.dropped:
                # Any dropped interval makes the sum an undercount of unknown size; a
                # partial number would go into the objectives as if measured.
                return Reading.missing_reading(
                    "rapl", f"{domain}: counter range unknown (max_energy_range_uj unreadable), "
                            f"a wrap could not be corrected ({track.dropped} of "
                            f"{track.dropped + track.kept} interval(s) lost)", duration_s)
        domains_j = {d: t.energy_j for d, t in self._tracks.items()}
        wraps = sum(t.wraps for t in self._tracks.values())
        scope = "package"
        self._share = 1.0
        if self.attribution == "cpu-share" and not self._raw:
            try:
                busy_ticks = read_busy_ticks(self.proc_stat) - self._busy0
            except (OSError, ValueError) as exc:
                return Reading.missing_reading("rapl", f"cannot read {self.proc_stat}: {exc}",
                                               duration_s)
            share = cpu_share(cpu_s, busy_ticks / (self._ticks_per_s or clock_ticks_per_s()))
            if share is None:
                return Reading.missing_reading(
                    "rapl", "cpu-share: the machine recorded no busy CPU time in the window "
                            "(shorter than a /proc/stat tick)", duration_s)
            if share.warning:
                warnings.append(share.warning)
            domains_j = {d: e * share.fraction for d, e in domains_j.items()}
            self._share = share.fraction
            scope = "apportioned"
        return Reading(backend="rapl", scope=scope, measured=True,
                       energy_j=sum(domains_j.values()), duration_s=duration_s,
                       domains_j=domains_j, wraps=wraps, warnings=tuple(warnings))

    def _measure_idle_power_w(self) -> float | None:
        # Raw package energy: the sleeping process's CPU share is ~0, so an apportioned
        # idle reading would say ~0 W (or be missing: nothing busy in the window).
        self._raw = True
        try:
            return super()._measure_idle_power_w()
        finally:
            self._raw = False

    def _window_idle_power_w(self) -> float:
        # The window is charged the same share of the idle power as of the package energy.
        return super()._window_idle_power_w() * self._share

    def describe(self) -> str:
        av = self.availability()
        if not av.available:
            return f"rapl: unavailable ({av.reason})"
        domains = ", ".join(z.domain for z in self.zones)
        how = (self._lock.describe() if self.attribution == "exclusive"
               else "cpu-share (package energy x this process's share of busy CPU time)")
        notes = "; ".join(self._discovery.notes + tuple(self.notes))
        if self._pyrapl_note:
            source = f"via powercap files {self.root} (pyRAPL not used: {self._pyrapl_note})"
        else:
            source = f"via pyRAPL (wrap ranges from {self.root})"
        return f"rapl: {domains} {source}, {how}" + (f" [{notes}]" if notes else "")

    def close(self) -> None:
        if self._counters is not None:
            self._counters.close()
        if isinstance(self._lock, FileLock):
            self._lock.close()
