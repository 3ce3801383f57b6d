"""The meter abstraction: an availability check that says why not, and metered windows.

Lifecycle of every meter::

    meter.availability()          # cached; Availability(available, reason)
    meter.start(); ...; meter.stop() -> Reading
    with meter.window() as w: ... # afterwards w.reading is the Reading

Subclasses implement ``_probe`` (availability), ``_begin`` and ``_end`` (the raw window),
and ``_cancel`` where a window runs a thread. The base class adds what every backend
shares: the cross-process lock of exclusive attribution, CUDA synchronisation at the
window boundaries and the idle baseline.

Closing a window never leaks: whatever raises in ``stop()`` (a CUDA error in the sync,
a failed read), the window is ended, its threads stopped and its lock released before
the first error is raised again as a MeterError. A lock left held would block every
other process's windows forever.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from gi_energy.errors import MeterError

from .locks import NullLock, WindowLock
from .reading import Reading


@dataclass(frozen=True)
class Availability:
    """Whether a backend can meter on this machine, and the reason when it cannot."""

    available: bool
    reason: str = ""


@dataclass(frozen=True)
class BackendStatus:
    """One line of ``gi-energy meters``: a backend, available or not, and why."""

    name: str
    available: bool
    measured: bool
    reason: str

    def to_dict(self) -> dict:
        return {"name": self.name, "available": self.available, "measured": self.measured,
                "reason": self.reason}


class Window:
    """What ``Meter.window()`` yields; ``reading`` is set when the window closes."""

    __slots__ = ("reading",)

    def __init__(self) -> None:
        self.reading: Reading | None = None


class Meter(ABC):
    """A source of energy readings over windows of work.

    ``name`` is the backend ("rapl", "nvml", "estimate", "auto" for a combination);
    ``measured`` is False for estimates. One meter has at most one window open at a time.
    """

    name: str = "meter"
    measured: bool = True

    def __init__(self, *, lock: WindowLock | None = None, idle_baseline_s: float = 0.0,
                 cuda_sync: Callable[[], None] | None = None) -> None:
        if idle_baseline_s < 0:
            raise ValueError(f"idle_baseline_s must be >= 0, got {idle_baseline_s}")
        self._lock = lock or NullLock()
        self._idle_baseline_s = idle_baseline_s
        self._idle_power_w: float | None = None
        self._idle_measured = False
        self._idle_missing_reason = ""
        self._cuda_sync = cuda_sync
        self._availability: Availability | None = None
        self._open = False
        self.notes: tuple[str, ...] = ()
        """Shown by describe(): what this meter leaves out and why."""
        self.reading_warnings: tuple[str, ...] = ()
        """Added to every reading's warnings (e.g. a part of the work left unmetered)."""

    # -- availability -------------------------------------------------------------------
    def availability(self) -> Availability:
        """Cached: probing hardware can cost milliseconds and the answer does not change."""
        if self._availability is None:
            self._availability = self._probe()
        return self._availability

    @abstractmethod
    def _probe(self) -> Availability:
        """Check the hardware once; never raise, say why not in the reason."""

    def require_available(self) -> None:
        av = self.availability()
        if not av.available:
            raise MeterError(f"{self.name} meter unavailable: {av.reason}")

    # -- windows ------------------------------------------------------------------------
    def start(self) -> None:
        """Open a window (waits for the cross-process lock under exclusive attribution)."""
        if self._open:
            raise MeterError(f"{self.name}: start() while a window is already open")
        self.require_available()
        self._lock.acquire()
        try:
            if self._idle_baseline_s > 0 and not self._idle_measured:
                # Measured under the lock, so other workers' windows do not count as idle.
                # Once only, even when the idle reading was missing: sleeping again on
                # every window would cost idle_baseline_s each time for nothing.
                self._idle_measured = True
                self._idle_power_w = self._measure_idle_power_w()
            self._sync()
            self._begin()
        except BaseException:
            try:
                self._cancel()
            finally:
                self._lock.release()
            raise
        self._open = True

    def stop(self) -> Reading:
        """Close the window and return its reading (missing with a reason, never 0).

        The window is ended, its threads stopped and its lock released even when the
        CUDA sync or the end sample raises; the first error is then raised as a
        MeterError (KeyboardInterrupt and the like as themselves) and the meter can open
        a new window.
        """
        if not self._open:
            raise MeterError(f"{self.name}: stop() without start()")
        errors: list[BaseException] = []
        reading: Reading | None = None
        try:
            try:
                self._sync()
            except BaseException as exc:
                errors.append(exc)
            try:
                # Ended even after a failed sync: a combined meter's parts hold locks.
                reading = self._end()
            except BaseException as exc:
                errors.append(exc)
        finally:
            try:
                self._cancel()
            finally:
                self._open = False
                self._lock.release()
        if errors:
            raise_first(errors, f"{self.name}: closing the window failed")
        assert reading is not None
        reading = self._with_baseline(reading)
        if self.reading_warnings:
            reading = replace(reading, warnings=reading.warnings + self.reading_warnings)
        return reading

    @contextmanager
    def window(self) -> Iterator[Window]:
        """``with meter.window() as w: work()``; then ``w.reading`` is the Reading.

        The window is closed (and the lock released) even when the work raises.
        """
        w = Window()
        self.start()
        try:
            yield w
        finally:
            w.reading = self.stop()

    @abstractmethod
    def _begin(self) -> None:
        """Take the start sample."""

    @abstractmethod
    def _end(self) -> Reading:
        """Take the end sample and build the raw reading (no idle baseline)."""

    def _cancel(self) -> None:  # noqa: B027 - optional hook; most meters run no thread
        """Stop whatever the window started (sampling threads); idempotent.

        Called after every window, in a finally, so a failed close leaves no thread.
        """

    def describe(self) -> str:
        """One line: backend, what it measures, and how windows are attributed."""
        return self.name

    def close(self) -> None:  # noqa: B027 - optional hook; most meters hold nothing
        """Release library handles; the meter must not be used afterwards."""

    # -- shared helpers -----------------------------------------------------------------
    @property
    def idle_power_w(self) -> float | None:
        return self._idle_power_w

    def _sync(self) -> None:
        # CUDA kernels run asynchronously: without a sync the window would close before
        # the GPU work it is meant to cover has finished.
        if self._cuda_sync is not None:
            self._cuda_sync()

    def _measure_idle_power_w(self) -> float | None:
        """Meter an idle sleep of idle_baseline_s; None when that reading was missing."""
        self._begin()
        try:
            time.sleep(self._idle_baseline_s)
            idle = self._end()
        finally:
            self._cancel()
        if idle.energy_j is None or idle.duration_s <= 0:
            self._idle_missing_reason = idle.missing_reason or "idle window of zero duration"
            return None
        return idle.energy_j / idle.duration_s

    def _window_idle_power_w(self) -> float:
        """The idle power charged to the window just closed (all of it unless apportioned)."""
        assert self._idle_power_w is not None
        return self._idle_power_w

    def _with_baseline(self, reading: Reading) -> Reading:
        if self._idle_baseline_s <= 0 or reading.energy_j is None:
            return reading
        if self._idle_power_w is None:
            why = f" ({self._idle_missing_reason})" if self._idle_missing_reason else ""
            return replace(reading, warnings=reading.warnings + (
                f"idle baseline requested but the idle reading was missing{why}",))
        return with_idle_baseline(reading, self._window_idle_power_w())


def raise_first(errors: list[BaseException], context: str) -> None:
    """Raise the first of ``errors``: a MeterError or a non-Exception (KeyboardInterrupt)
    as itself, any other exception as a MeterError naming it."""
    first = errors[0]
    if isinstance(first, MeterError) or not isinstance(first, Exception):
        raise first
    raise MeterError(f"{context}: {type(first).__name__}: {first}") from first


def with_idle_baseline(reading: Reading, idle_power_w: float) -> Reading:
    """Add idle_power_w and dynamic_energy_j = energy - idle power x duration (>= 0)."""
    if reading.energy_j is None:
        return replace(reading, idle_power_w=idle_power_w)
    dynamic_j = reading.energy_j - idle_power_w * reading.duration_s
    warnings = reading.warnings
    if dynamic_j < 0:
        # Noise can put a near-idle window under the baseline; a negative energy would be
        # read as a saving, so clamp it and say so.
        warnings = warnings + (f"dynamic energy {dynamic_j:.4g} J below the idle baseline; "
                               "reported as 0",)
        dynamic_j = 0.0
    return replace(reading, idle_power_w=idle_power_w, dynamic_energy_j=dynamic_j,
                   warnings=warnings)
