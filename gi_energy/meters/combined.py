"""RAPL and NVML together: CPU package plus GPU board, as one reading with both parts."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .base import Availability, Meter, raise_first
from .reading import Reading


def combine_readings(parts: Sequence[Reading]) -> Reading:
    """backend "combined": energy is the sum of the parts, None if any part is missing."""
    duration_s = max((p.duration_s for p in parts), default=0.0)
    domains_j: dict[str, float] = {}
    warnings: list[str] = []
    for p in parts:
        domains_j.update(p.domains_j)
        warnings.extend(f"{p.backend}: {w}" for w in p.warnings)
    missing = [p for p in parts if p.energy_j is None]
    energy_j = None if missing else sum(p.energy_j for p in parts)
    reason = "; ".join(f"{p.backend}: {p.missing_reason}" for p in missing) or None
    idle = [p.idle_power_w for p in parts]
    idle_power_w = sum(idle) if idle and all(i is not None for i in idle) else None
    dyn = [p.dynamic_energy_j for p in parts]
    dynamic_j = sum(dyn) if dyn and energy_j is not None and all(d is not None for d in dyn) else None
    return Reading(backend="combined", scope="combined", measured=all(p.measured for p in parts),
                   energy_j=energy_j, duration_s=duration_s, domains_j=domains_j,
                   wraps=sum(p.wraps for p in parts), idle_power_w=idle_power_w,
                   dynamic_energy_j=dynamic_j, warnings=tuple(warnings), missing_reason=reason,
                   parts=tuple(parts))


class CombinedMeter(Meter):
    """Opens a window on every part; each part keeps its own lock and idle baseline.

    Parts start in the given order and stop in reverse, so two processes always take the
    package lock before the GPU lock and cannot deadlock. Every part is stopped, each in
    its own try, even when the CUDA sync or another part fails: a part left open would
    keep its lock (and its sampling thread) forever.
    """

    name = "auto"

    def __init__(self, parts: Sequence[Meter], *, cuda_sync: Callable[[], None] | None = None):
        super().__init__(cuda_sync=cuda_sync)
        if not parts:
            raise ValueError("CombinedMeter needs at least one part")
        self.parts = tuple(parts)
        self.measured = all(p.measured for p in self.parts)

    def _probe(self) -> Availability:
        for p in self.parts:
            av = p.availability()
            if not av.available:
                return Availability(False, f"{p.name}: {av.reason}")
        return Availability(True, "")

    def _begin(self) -> None:
        started: list[Meter] = []
        try:
            for p in self.parts:
                p.start()
                started.append(p)
        except BaseException:
            for p in reversed(started):
                try:
                    p.stop()
                except BaseException:  # the start error is the one to raise
                    pass
            raise

    def _end(self) -> Reading:
        readings: list[Reading] = []
        errors: list[BaseException] = []
        for p in reversed(self.parts):
            try:
                readings.append(p.stop())
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise_first(errors, f"{self.name}: closing a part's window failed")
        return combine_readings(list(reversed(readings)))

    def _measure_idle_power_w(self) -> float | None:  # parts measure their own baseline
        return None

    def describe(self) -> str:
        return " + ".join(p.describe() for p in self.parts)

    def close(self) -> None:
        for p in self.parts:
            p.close()
