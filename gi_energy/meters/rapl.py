"""RAPL (CPU package energy through powercap). Being built: reports itself unavailable."""

from __future__ import annotations

from pathlib import Path

from .base import Availability, Meter
from .reading import Reading

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
DEFAULT_PROC_STAT = Path("/proc/stat")


class RaplMeter(Meter):
    name = "rapl"
    measured = True

    def __init__(self, *, powercap_root: Path = DEFAULT_POWERCAP_ROOT,
                 proc_stat: Path = DEFAULT_PROC_STAT, attribution: str = "exclusive",
                 lock_dir: Path | None = None, idle_baseline_s: float = 0.0, **_):
        super().__init__(idle_baseline_s=idle_baseline_s)

    def _probe(self) -> Availability:
        return Availability(False, "RAPL backend not built yet")

    def _begin(self) -> None:
        pass

    def _end(self) -> Reading:
        return Reading.missing_reading("rapl", "RAPL backend not built yet")
