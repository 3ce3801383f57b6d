"""The public meter: gi-energy's energy windows around any code.

    import gi_energy

    with gi_energy.meter() as m:          # auto: RAPL (+ NVML on a GPU), else the estimate
        train_my_model()
    print(m.reading.energy_j, m.reading.source)

    m = gi_energy.meter("estimate")
    @m                                    # every call is one window
    def predict(batch): ...
    predict(x); predict(y)
    m.readings                            # one Reading per call, in order

The readings are the engine's own :class:`Reading` (energy_j, duration_s, backend, scope,
measured, warnings): the same backends, the same wrap corrections, the same labels. An
estimate is never a measurement (``measured`` is False); a window that could not be read
has ``energy_j`` None with ``missing_reason``, never a zero.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from gi_energy.config.problem import EnergyConfig
from gi_energy.errors import MeterError

from .base import Meter as BackendMeter
from .factory import create_meter
from .reading import Reading

F = TypeVar("F", bound=Callable[..., Any])

ATTRIBUTIONS = ("exclusive", "cpu-share")


class Meter:
    """Meters windows of any code: ``with`` blocks and decorated calls.

    ``backend`` is ``"auto"``, ``"rapl"``, ``"nvml"`` or ``"estimate"`` (as ``[energy]
    meter`` in a problem file); ``device`` the device the work runs on (``"cpu"``,
    ``"cuda"``, ``"cuda:N"``). ``attribution``, ``cpu_watts_per_core``, ``gpu_watts`` and
    ``idle_baseline_s`` mean what the ``[energy]`` keys of the same name mean. ``hardware``
    is passed to the factory as is (``powercap_root``, ``nvml``, ``proc_stat``,
    ``powercap_read``, ``lock_dir``: the fakes of :mod:`gi_energy.meters.fakes` go there).
    Or give ``backend_meter``, an engine meter built elsewhere; it is not closed here.

    One window is open at a time; nesting a ``with`` inside another on the same meter is a
    MeterError. ``reading`` is the last window's Reading, ``readings`` all of them.
    """

    def __init__(self, backend: str = "auto", *, device: str = "cpu", attribution: str = "exclusive",
                 cpu_watts_per_core: float = 10.0, gpu_watts: float | None = None,
                 idle_baseline_s: float = 0.0, backend_meter: BackendMeter | None = None,
                 **hardware: Any) -> None:
        if attribution not in ATTRIBUTIONS:
            raise MeterError(f"attribution={attribution!r}: expected one of {', '.join(ATTRIBUTIONS)}")
        if backend_meter is not None:
            self._meter, self._owned = backend_meter, False
        else:
            energy = EnergyConfig(meter=backend, attribution=attribution,
                                  cpu_watts_per_core=float(cpu_watts_per_core),
                                  gpu_watts=None if gpu_watts is None else float(gpu_watts),
                                  idle_baseline_s=float(idle_baseline_s))
            try:
                self._meter = create_meter(energy, device=device, **hardware)
            except TypeError as exc:
                raise MeterError(f"gi_energy.meter(): {exc}") from None
            except ValueError as exc:
                raise MeterError(f"gi_energy.meter(): {exc}") from None
            self._owned = True
        self.readings: list[Reading] = []

    # -- what it is
    @property
    def backend(self) -> str:
        return self._meter.name

    @property
    def measured(self) -> bool:
        """False for the estimate: its readings are never measurements."""
        return bool(self._meter.measured)

    def describe(self) -> str:
        """One line: the backend, what it measures, and what it leaves out."""
        return self._meter.describe()

    @property
    def reading(self) -> Reading | None:
        """The last closed window's Reading (None before the first)."""
        return self.readings[-1] if self.readings else None

    @property
    def energy_j(self) -> float | None:
        """Joules of every window so far; None when any reading is missing (never a zero)."""
        if not self.readings or any(r.missing for r in self.readings):
            return None
        return float(sum(r.energy_j for r in self.readings))

    # -- windows
    def __enter__(self) -> Meter:
        self._meter.start()
        return self

    def __exit__(self, *exc_info) -> None:
        # Closed even when the work raised: a window left open would hold the lock.
        self.readings.append(self._meter.stop())

    def __call__(self, fn: F) -> F:
        """Decorate ``fn``: every call is metered in its own window; the return value is
        ``fn``'s, the Reading goes to ``readings``."""

        @functools.wraps(fn)
        def metered(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)

        metered.meter = self  # type: ignore[attr-defined]
        return metered  # type: ignore[return-value]

    def close(self) -> None:
        """Release library handles (NVML) and locks' files; the meter is not used after."""
        if self._owned:
            self._meter.close()

    def __repr__(self) -> str:
        return f"Meter({self.describe()!r}, {len(self.readings)} readings)"


def meter(backend: str = "auto", **options: Any) -> Meter:
    """A :class:`Meter` (see there for ``backend`` and ``options``)."""
    return Meter(backend, **options)
