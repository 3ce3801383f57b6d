"""NVML: NVIDIA GPU board energy over windows of work.

Volta and newer boards have a total-energy counter (millijoules); older boards only
report power (milliwatts), so a thread samples it and the samples are integrated over
time. The counter moves in whole updates (every 100 ms on an H100), too coarse for a
window of under a second; where the driver has the instant board-power field
(NVML_FI_DEV_POWER_INSTANT), the same thread samples it every few ms during a counter
window, and a short window is reported as the integral of those samples instead. (On an
H100 that field, too, is refreshed about every 100 ms: the integral does away with
counting whole updates, not with the 100 ms resolution.) The library itself (finding the
board, what it can measure, the reads) is NvmlDevice in nvmldevice.py.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from .base import Availability, Meter
from .locks import FileLock, NullLock, default_lock_dir
from .nvmldevice import ENERGY_COUNTER, INSTANT_POWER_FIELD, NvmlDevice
from .reading import Reading
from .units import mj_to_j, mw_to_w

DEFAULT_UPDATE_PERIOD_S = 0.1
"""The energy counter advances in steps of about this much (board dependent)."""
DEFAULT_SAMPLE_INTERVAL_S = 0.02
"""Power sampling interval on boards without an energy counter."""
COARSE_WINDOW_UPDATES = 10
"""A counter window spanning fewer updates than this carries a warning: the counter moves in
whole updates, so the window's energy is uncertain by up to one update's worth (measured on
an H100: updates every 100 ms, see docs/measurements.md)."""

DEFAULT_INSTANT_INTERVAL_S = 0.005
"""Sampling interval of the instant-power field in counter windows. On an H100 one read
costs 5-8 us and the driver refreshes the value about every 100 ms (docs/measurements.md):
sampled every 5 ms, each value is weighted by the time it held inside the window, to
within 5 ms, where the counter can only count whole updates."""


def integrate_power_j(samples: Sequence[tuple[float, float]]) -> float:
    """Trapezoidal integral of (time_s, power_w) samples, in joules."""
    energy_j = 0.0
    for (t0, p0), (t1, p1) in zip(samples, samples[1:]):
        energy_j += (p0 + p1) / 2 * (t1 - t0)
    return energy_j


class NvmlMeter(Meter):
    """Board energy of one GPU; windows are exclusive per GPU by default.

    A window of fewer than COARSE_WINDOW_UPDATES counter updates is, where the board has
    the instant-power field and its samples cover the window (``instant_interval_s``
    apart, no gap over half an update period), the trapezoidal integral of those samples,
    with a warning that names the method and the counter's own delta. Otherwise it is as
    without the field: the counter's delta, with a warning that says how uncertain whole
    updates make it; a window shorter than ``update_period_s``, or one in which the
    counter did not move, is mean board power x duration with a warning, never zero.
    ``instant_interval_s=0`` turns the instant-power sampling off.
    """

    name = "nvml"
    measured = True

    def __init__(self, *, device_index: int = 0, pynvml: ModuleType | None = None,
                 lock_dir: Path | None = None, exclusive: bool = True,
                 idle_baseline_s: float = 0.0, cuda_sync: Callable[[], None] | None = None,
                 update_period_s: float = DEFAULT_UPDATE_PERIOD_S,
                 sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
                 instant_interval_s: float = DEFAULT_INSTANT_INTERVAL_S,
                 visible_devices: str | None = None,
                 wall_clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(idle_baseline_s=idle_baseline_s, cuda_sync=cuda_sync)
        self.device_index = device_index
        self._exclusive = exclusive
        self._lock_dir = lock_dir
        self.device = NvmlDevice(pynvml)
        """The board's handle, facts and reads."""
        self._visible = (visible_devices if visible_devices is not None
                         else os.environ.get("CUDA_VISIBLE_DEVICES"))
        self.update_period_s = update_period_s
        self.sample_interval_s = sample_interval_s
        if instant_interval_s < 0:
            raise ValueError(f"instant_interval_s must be >= 0, got {instant_interval_s}")
        self.instant_interval_s = instant_interval_s
        self._wall_clock = wall_clock
        self.instant_power = False
        """Whether counter windows also sample the instant-power field (probed once)."""
        self.instant_power_reason = ""
        """Why not, when instant_power is False."""
        self.last_method: str | None = None
        """How the last window's energy was taken: "instant-power", "counter",
        "power-x-time" or "power-sampling" (None: missing). For cross-checks."""
        self.last_counter_j: float | None = None
        """The energy counter's delta over the last window, whichever method it used."""
        # per-window state
        self._t0 = 0.0
        self._e0_mj = 0
        self._p0_mw: float | None = None
        self._error: str | None = None
        self._samples: list[tuple[float, float]] = []
        self._sample_error: str | None = None
        self._instant_note: str | None = None
        self._stop_sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    # -- availability -------------------------------------------------------------------
    @property
    def mode(self) -> str | None:
        """ENERGY_COUNTER or POWER_SAMPLING once available, else None."""
        return self.device.mode

    @property
    def board(self) -> str:
        return self.device.board

    @property
    def physical(self) -> str:
        """The NVML index or UUID of the GPU metered ("" before availability)."""
        return self.device.physical

    def _probe(self) -> Availability:
        av = self.device.open(self.device_index, self._visible)
        if not av.available:
            return av
        if self.mode == ENERGY_COUNTER:
            self._probe_instant_power()
        self._lock = (FileLock(self._lock_dir or default_lock_dir(), f"nvml-{self.physical}.lock")
                      if self._exclusive else NullLock())
        return av

    def _probe_instant_power(self) -> None:
        """Whether counter windows sample the instant board-power field; recorded, never
        raised: older drivers and boards lack it, and the counter works without it."""
        if self.instant_interval_s <= 0:
            self.instant_power_reason = "instant-power sampling turned off (instant_interval_s=0)"
            return
        self.instant_power_reason = self.device.probe_instant_power()
        self.instant_power = not self.instant_power_reason

    # -- window -------------------------------------------------------------------------
    def _sample_loop(self, read_w: Callable[[], float], until: float | None) -> None:
        """Append (time, watts) every interval until stopped, or until the clock passes
        ``until`` (a window that long does not use the samples). A failed read ends the
        loop and is kept in _sample_error: the thread can raise to no one."""
        interval = self.instant_interval_s if until is not None else self.sample_interval_s
        while not self._stop_sampling.wait(interval):
            try:
                t = self._wall_clock()
                if until is not None and t >= until:
                    return
                self._samples.append((t, read_w()))
            except Exception as exc:  # noqa: BLE001 - recorded, reported by _end
                self._sample_error = self.device.error_text(exc)
                return

    def _start_sampler(self, read_w: Callable[[], float], until: float | None = None) -> None:
        self._stop_sampling.clear()
        self._sampler = threading.Thread(target=self._sample_loop, args=(read_w, until),
                                         name="gi-energy-nvml-power", daemon=True)
        self._sampler.start()

    def _begin(self) -> None:
        self._error = None
        self._sample_error = None
        self._instant_note = None
        self._samples = []
        self.last_method = self.last_counter_j = None
        try:
            if self.mode == ENERGY_COUNTER:
                self._e0_mj = self.device.energy_mj()
                self._p0_mw = self._power_or_none()
                self._t0 = self._wall_clock()
                if self.instant_power:
                    self._begin_instant_sampling()
                return
            self._t0 = self._wall_clock()
            self._samples = [(self._t0, self.device.power_w())]
        except Exception as exc:
            if not self.device.is_error(exc):
                raise
            self._error = f"NVML read failed at the window start: {exc}"
            self._t0 = self._wall_clock()
            return
        self._start_sampler(self.device.power_w)

    def _begin_instant_sampling(self) -> None:
        """Counter windows: instant power at the window's start, then every
        instant_interval_s until the window is long enough for the counter alone."""
        try:
            self._samples = [(self._t0, self.device.instant_power_w())]
        except Exception as exc:  # noqa: BLE001 - degrade to the counter, with a warning
            self._instant_note = f"read failed at the window start ({self.device.error_text(exc)})"
            return
        self._start_sampler(self.device.instant_power_w,
                            until=self._t0 + COARSE_WINDOW_UPDATES * self.update_period_s)

    def _cancel(self) -> None:
        if self._sampler is not None:
            self._stop_sampling.set()
            self._sampler.join()
            self._sampler = None

    def _power_or_none(self) -> float | None:
        try:
            return self.device.power_mw()
        except Exception as exc:
            if not self.device.is_error(exc):
                raise
            return None

    def _end(self) -> Reading:
        t1 = self._wall_clock()
        duration_s = max(0.0, t1 - self._t0)
        domain = f"gpu-{self.device_index}"
        short = duration_s < COARSE_WINDOW_UPDATES * self.update_period_s
        instant_end = self._instant_end_sample(t1) if short else None
        self._cancel()
        # The thread may have taken one sample after t1, before it was stopped.
        self._samples = [s for s in self._samples if s[0] <= t1]
        if self._error is not None:
            return Reading.missing_reading("nvml", self._error, duration_s)
        warnings: list[str] = []
        try:
            if self.mode == ENERGY_COUNTER:
                e1_mj = self.device.energy_mj()
                delta_mj = e1_mj - self._e0_mj
                self.last_counter_j = mj_to_j(delta_mj)
                instant = self._instant_integral(instant_end) if short else None
                if instant is not None:
                    energy_j, samples, gap_s = instant
                    warnings.append(self._instant_method_note(duration_s, samples, gap_s,
                                                              delta_mj))
                    method = "instant-power"
                elif duration_s >= self.update_period_s and delta_mj > 0:
                    energy_j = mj_to_j(delta_mj)
                    if short:
                        warnings.append(self._coarse_window_warning(duration_s))
                    method = "counter"
                else:
                    energy_j, warning = self._short_window_j(duration_s, delta_mj)
                    warnings.append(warning)
                    method = "power-x-time"
                if short and instant is None and self._instant_note is not None:
                    warnings.append(f"instant power not used: {self._instant_note}")
            else:
                if self._sample_error is not None:
                    return Reading.missing_reading(
                        "nvml", f"power sample failed: {self._sample_error}", duration_s)
                self._samples.append((t1, self.device.power_w()))
                energy_j = integrate_power_j(self._samples)
                method = "power-sampling"
        except Exception as exc:
            if not self.device.is_error(exc):
                raise
            return Reading.missing_reading("nvml", f"NVML read failed: {exc}", duration_s)
        self.last_method = method
        return Reading(backend="nvml", scope="board", measured=True, energy_j=energy_j,
                       duration_s=duration_s, domains_j={domain: energy_j},
                       warnings=tuple(warnings))

    def _instant_end_sample(self, t1: float) -> tuple[float, float] | None:
        """The instant power at the end of a short counter window that has samples."""
        if self.mode != ENERGY_COUNTER or not self._samples:
            return None
        try:
            return (t1, self.device.instant_power_w())
        except Exception as exc:  # noqa: BLE001 - degrade to the counter, with a warning
            self._instant_note = f"read failed at the window end ({self.device.error_text(exc)})"
            return None

    def _instant_integral(self, end: tuple[float, float] | None
                          ) -> tuple[float, list[tuple[float, float]], float] | None:
        """(joules, samples, largest gap s) of the instant-power samples over the window, or
        None (with _instant_note saying why, where there is a reason to say) when they do
        not cover it: a failed read, or a gap over half a counter update (a starved
        sampling thread)."""
        if self._sample_error is not None:
            self._instant_note = f"read failed mid-window ({self._sample_error})"
            return None
        if end is None or not self._samples:
            return None
        samples = [*self._samples, end]
        gap_s = max(b[0] - a[0] for a, b in zip(samples, samples[1:]))
        if gap_s > self.update_period_s / 2:
            self._instant_note = (f"sampled too sparsely ({len(samples)} samples, a gap of "
                                  f"{gap_s * 1e3:.0f} ms)")
            return None
        return integrate_power_j(samples), samples, gap_s

    def _instant_method_note(self, duration_s: float, samples: list[tuple[float, float]],
                             gap_s: float, delta_mj: int) -> str:
        """Says how a short window's energy was taken, how often the field's value changed
        (on an H100 it is refreshed about every 100 ms, however often it is read, so power
        changes faster than that are smoothed, not resolved) and what the counter read."""
        period = self.update_period_s
        changes = sum(a[1] != b[1] for a, b in zip(samples, samples[1:]))
        counter = (f"its delta, {mj_to_j(delta_mj):.4g} J, is uncertain by up to "
                   f"+-{100 * period / duration_s:.0f}%" if duration_s >= period and delta_mj > 0
                   else "it cannot tell")
        return (f"energy = instant board power ({INSTANT_POWER_FIELD}) integrated over "
                f"{len(samples)} samples (every {self.instant_interval_s * 1e3:g} ms asked, "
                f"largest gap {gap_s * 1e3:.1f} ms; the value changed {changes} times: power is "
                f"resolved no finer than the field's refreshes), not the energy counter: window {duration_s:.3f} s spans ~{duration_s / period:.1f} counter "
                f"updates of ~{period * 1e3:.0f} ms; {counter}")

    def _coarse_window_warning(self, duration_s: float) -> str:
        """The counter's delta covers the whole updates between the two reads: n updates of
        ~update_period_s, with n = duration / period rounded either way. At steady power that
        is off by up to period / duration, so a 0.35 s window can read 3 updates (-14%) or 4
        (+14%)."""
        period = self.update_period_s
        return (f"window {duration_s:.3f} s spans ~{duration_s / period:.1f} updates of the "
                f"energy counter (~{period * 1e3:.0f} ms each): energy uncertain by up to "
                f"+-{100 * period / duration_s:.0f}%")

    def _short_window_j(self, duration_s: float, delta_mj: int) -> tuple[float, str]:
        """Mean of the start and end board power x duration, for a counter that cannot tell.

        The counter moves in ~update_period_s steps, so over a shorter window it reads
        either 0 or a whole step: both wrong. Power x time is the honest figure.
        """
        powers_mw = [p for p in (self._p0_mw, self.device.power_mw()) if p is not None]
        energy_j = mw_to_w(sum(powers_mw) / len(powers_mw)) * duration_s
        why = ("counter did not move" if delta_mj <= 0 and duration_s >= self.update_period_s
               else f"window {duration_s * 1e3:.1f} ms is shorter than the counter's "
                    f"~{self.update_period_s * 1e3:.0f} ms update period")
        return energy_j, f"{why}; energy = board power x duration"

    def describe(self) -> str:
        av = self.availability()
        if not av.available:
            return f"nvml: unavailable ({av.reason})"
        if self.mode == ENERGY_COUNTER:
            short = COARSE_WINDOW_UPDATES * self.update_period_s
            how = "total-energy counter" + (
                f"; windows under {short:g} s by instant power sampled every "
                f"{self.instant_interval_s * 1e3:g} ms" if self.instant_power
                else f" (no instant power: {self.instant_power_reason})")
        else:
            how = (f"power sampled every {self.sample_interval_s * 1e3:.0f} ms "
                   "(no energy counter: pre-Volta board)")
        text = f"nvml: GPU {self.physical} ({self.board}), board energy by {how}, {self._lock.describe()}"
        if self.notes:
            text += f" [{'; '.join(self.notes)}]"
        return text

    def close(self) -> None:
        if isinstance(self._lock, FileLock):
            self._lock.close()
        self.device.shutdown()
