"""Energy meters: RAPL (CPU package), NVML (NVIDIA board) and an honest estimate.

    meter = create_meter(problem.energy, device="cpu")
    with meter.window() as w:
        train()
    w.reading            # Reading: energy_j, duration_s, backend, scope, measured, ...

Around research code, the public meter (``gi_energy.meter()``, :mod:`.public`) is the
same backends as a context manager and a decorator.
"""

from .base import Availability, BackendStatus, Meter, Window
from .estimate import DEFAULT_CPU_WATTS_PER_CORE, EstimateMeter
from .factory import METER_NAMES, backend_statuses, create_meter
from .public import meter
from .reading import Reading

__all__ = [
    "DEFAULT_CPU_WATTS_PER_CORE",
    "METER_NAMES",
    "Availability",
    "BackendStatus",
    "EstimateMeter",
    "Meter",
    "Reading",
    "Window",
    "backend_statuses",
    "create_meter",
    "meter",
]
