"""The estimate: process CPU time x watts per core, plus configured GPU watts x wall time.

Never a measurement: ``measured`` is False and the scope is "process-estimate". It needs
no lock because it only counts this process's own CPU time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .base import Availability, Meter
from .reading import Reading

DEFAULT_CPU_WATTS_PER_CORE = 10.0
"""Documented default: roughly a server core's share of package power under load."""


class EstimateMeter(Meter):
    """energy_j = CPU seconds of this process x cpu_watts_per_core (+ gpu_watts x wall s).

    ``time.process_time`` covers every thread of the process (PyTorch's intra-op pool
    included), not child processes. GPU energy is added only when ``gpu_watts`` is set and
    the work runs on a GPU; otherwise nothing is assumed for the GPU.
    """

    name = "estimate"
    measured = False

    def __init__(self, *, cpu_watts_per_core: float = DEFAULT_CPU_WATTS_PER_CORE,
                 gpu_watts: float | None = None, device: str = "cpu",
                 fallback_reasons: tuple[str, ...] = (), idle_baseline_s: float = 0.0,
                 cuda_sync: Callable[[], None] | None = None,
                 cpu_clock: Callable[[], float] = time.process_time,
                 wall_clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(idle_baseline_s=idle_baseline_s, cuda_sync=cuda_sync)
        if cpu_watts_per_core <= 0:
            raise ValueError(f"cpu_watts_per_core must be > 0, got {cpu_watts_per_core}")
        if gpu_watts is not None and gpu_watts <= 0:
            raise ValueError(f"gpu_watts must be > 0 or None, got {gpu_watts}")
        self.cpu_watts_per_core = cpu_watts_per_core
        self.gpu_watts = gpu_watts if device.startswith("cuda") else None
        self.fallback_reasons = tuple(fallback_reasons)
        self._cpu_clock = cpu_clock
        self._wall_clock = wall_clock
        self._cpu0_s = 0.0
        self._wall0_s = 0.0

    def _probe(self) -> Availability:
        return Availability(True, "always available; not a measurement")

    def _begin(self) -> None:
        self._wall0_s = self._wall_clock()
        self._cpu0_s = self._cpu_clock()

    def _end(self) -> Reading:
        cpu_s = max(0.0, self._cpu_clock() - self._cpu0_s)
        duration_s = max(0.0, self._wall_clock() - self._wall0_s)
        domains_j = {"cpu": cpu_s * self.cpu_watts_per_core}
        if self.gpu_watts is not None:
            domains_j["gpu"] = self.gpu_watts * duration_s
        return Reading(backend="estimate", scope="process-estimate", measured=False,
                       energy_j=sum(domains_j.values()), duration_s=duration_s,
                       domains_j=domains_j)

    def describe(self) -> str:
        text = f"estimate: {self.cpu_watts_per_core:g} W/core x process CPU time"
        if self.gpu_watts is not None:
            text += f" + {self.gpu_watts:g} W x wall time for the GPU"
        why = ", ".join(self.fallback_reasons) or "estimate chosen"
        return f"{text} (not measured: {why})"
