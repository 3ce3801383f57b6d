"""NVML: NVIDIA GPU board energy through pynvml (package nvidia-ml-py).

Volta and newer boards have a total-energy counter (millijoules); older boards only
report power (milliwatts), so a thread samples it and the samples are integrated over
time. The pynvml module is injectable, so tests run the real logic on a fake library.
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

ENERGY_COUNTER = "energy-counter"
POWER_SAMPLING = "power-sampling"


def cuda_index(device: str) -> int:
    """The CUDA ordinal of a device string: 0 for "cuda", N for "cuda:N"."""
    kind, _, idx = device.partition(":")
    if not kind.startswith("cuda"):
        return 0
    try:
        return int(idx) if idx else 0
    except ValueError:
        raise ValueError(f"bad CUDA device {device!r}; expected cuda or cuda:N") from None


def visible_device(ordinal: int, visible: str | None) -> int | str:
    """The NVML index (int) or UUID (str) of CUDA ordinal ``ordinal``.

    CUDA numbers only the GPUs listed in CUDA_VISIBLE_DEVICES, NVML numbers all of them,
    so "cuda:0" with CUDA_VISIBLE_DEVICES=2,3 is NVML index 2.
    """
    if not visible:
        return ordinal
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if ordinal >= len(entries):
        raise IndexError(f"cuda:{ordinal} but CUDA_VISIBLE_DEVICES={visible!r}")
    entry = entries[ordinal]
    return int(entry) if entry.isdigit() else entry


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def integrate_power_j(samples: Sequence[tuple[float, float]]) -> float:
    """Trapezoidal integral of (time_s, power_w) samples, in joules."""
    energy_j = 0.0
    for (t0, p0), (t1, p1) in zip(samples, samples[1:]):
        energy_j += (p0 + p1) / 2 * (t1 - t0)
    return energy_j


class NvmlMeter(Meter):
    """Board energy of one GPU; windows are exclusive per GPU by default.

    A window shorter than ``update_period_s``, or one in which the counter did not move,
    is reported as mean board power x duration with a warning, never as zero. A window of
    fewer than COARSE_WINDOW_UPDATES counter updates is the counter's delta, with a warning
    that says how uncertain whole updates make it.
    """

    name = "nvml"
    measured = True

    def __init__(self, *, device_index: int = 0, pynvml: ModuleType | None = None,
                 lock_dir: Path | None = None, exclusive: bool = True,
                 idle_baseline_s: float = 0.0, cuda_sync: Callable[[], None] | None = None,
                 update_period_s: float = DEFAULT_UPDATE_PERIOD_S,
                 sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
                 visible_devices: str | None = None,
                 wall_clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(idle_baseline_s=idle_baseline_s, cuda_sync=cuda_sync)
        self.device_index = device_index
        self._exclusive = exclusive
        self._lock_dir = lock_dir
        self._lib = pynvml
        self._visible = (visible_devices if visible_devices is not None
                         else os.environ.get("CUDA_VISIBLE_DEVICES"))
        self.update_period_s = update_period_s
        self.sample_interval_s = sample_interval_s
        self._wall_clock = wall_clock
        self._handle = None
        self._initialised = False
        self.mode: str | None = None
        self.board = ""
        self.physical = ""
        # per-window state
        self._t0 = 0.0
        self._e0_mj = 0
        self._p0_mw: float | None = None
        self._error: str | None = None
        self._samples: list[tuple[float, float]] = []
        self._stop_sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    # -- availability -------------------------------------------------------------------
    def _library(self) -> ModuleType:
        if self._lib is None:
            import pynvml

            self._lib = pynvml
        return self._lib

    def _is_error(self, exc: BaseException) -> bool:
        error_type = getattr(self._lib, "NVMLError", None)
        return error_type is not None and isinstance(exc, error_type)

    def _not_supported(self, exc: BaseException) -> bool:
        code = getattr(self._lib, "NVML_ERROR_NOT_SUPPORTED", 3)
        return getattr(exc, "value", None) == code

    def _probe(self) -> Availability:
        try:
            lib = self._library()
        except ImportError as exc:
            return Availability(False, f"pynvml is not installed (pip install nvidia-ml-py): {exc}")
        try:
            lib.nvmlInit()
            self._initialised = True
            count = lib.nvmlDeviceGetCount()
            if count == 0:
                return Availability(False, "NVML found no NVIDIA GPU")
            try:
                which = visible_device(self.device_index, self._visible)
            except IndexError as exc:
                return Availability(False, str(exc))
            if isinstance(which, str):
                self._handle = lib.nvmlDeviceGetHandleByUUID(which)
                self.physical = which
            else:
                if which >= count:
                    return Availability(False, f"GPU {which} requested but NVML sees {count}")
                self._handle = lib.nvmlDeviceGetHandleByIndex(which)
                self.physical = str(which)
            self.board = _text(lib.nvmlDeviceGetName(self._handle))
        except Exception as exc:
            if not self._is_error(exc):
                raise
            hint = ""
            if getattr(exc, "value", None) in (getattr(lib, "NVML_ERROR_LIBRARY_NOT_FOUND", 12),
                                               getattr(lib, "NVML_ERROR_DRIVER_NOT_LOADED", 9)):
                hint = " (no NVIDIA driver on this machine)"
            return Availability(False, f"NVML cannot start: {exc}{hint}")
        try:
            lib.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            self.mode = ENERGY_COUNTER
        except Exception as exc:
            if not self._is_error(exc):
                raise
            if not self._not_supported(exc):
                return Availability(False, f"NVML energy counter of {self.board}: {exc}")
            try:
                lib.nvmlDeviceGetPowerUsage(self._handle)
            except Exception as exc2:
                if not self._is_error(exc2):
                    raise
                return Availability(False, f"{self.board} reports neither energy nor power: {exc2}")
            self.mode = POWER_SAMPLING
        self._lock = (FileLock(self._lock_dir or default_lock_dir(), f"nvml-{self.physical}.lock")
                      if self._exclusive else NullLock())
        return Availability(True, "")

    # -- window -------------------------------------------------------------------------
    def _power_mw(self) -> float:
        return float(self._lib.nvmlDeviceGetPowerUsage(self._handle))

    def _sample_loop(self) -> None:
        while not self._stop_sampling.wait(self.sample_interval_s):
            try:
                self._samples.append((self._wall_clock(), mw_to_w(self._power_mw())))
            except Exception as exc:
                if not self._is_error(exc):
                    raise
                self._error = self._error or f"power sample failed: {exc}"
                return

    def _begin(self) -> None:
        self._error = None
        lib = self._lib
        try:
            if self.mode == ENERGY_COUNTER:
                self._e0_mj = lib.nvmlDeviceGetTotalEnergyConsumption(self._handle)
                self._p0_mw = self._power_or_none()
                self._t0 = self._wall_clock()
                return
            self._t0 = self._wall_clock()
            self._samples = [(self._t0, mw_to_w(self._power_mw()))]
        except Exception as exc:
            if not self._is_error(exc):
                raise
            self._error = f"NVML read failed at the window start: {exc}"
            self._t0 = self._wall_clock()
            return
        self._stop_sampling.clear()
        self._sampler = threading.Thread(target=self._sample_loop, name="gi-energy-nvml-power",
                                         daemon=True)
        self._sampler.start()

    def _cancel(self) -> None:
        if self._sampler is not None:
            self._stop_sampling.set()
            self._sampler.join()
            self._sampler = None

    def _power_or_none(self) -> float | None:
        try:
            return self._power_mw()
        except Exception as exc:
            if not self._is_error(exc):
                raise
            return None

    def _end(self) -> Reading:
        t1 = self._wall_clock()
        duration_s = max(0.0, t1 - self._t0)
        domain = f"gpu-{self.device_index}"
        self._cancel()
        if self._error is not None:
            return Reading.missing_reading("nvml", self._error, duration_s)
        warnings: list[str] = []
        try:
            if self.mode == ENERGY_COUNTER:
                e1_mj = self._lib.nvmlDeviceGetTotalEnergyConsumption(self._handle)
                delta_mj = e1_mj - self._e0_mj
                if duration_s >= self.update_period_s and delta_mj > 0:
                    energy_j = mj_to_j(delta_mj)
                    if duration_s < COARSE_WINDOW_UPDATES * self.update_period_s:
                        warnings.append(self._coarse_window_warning(duration_s))
                else:
                    energy_j, warning = self._short_window_j(duration_s, delta_mj)
                    warnings.append(warning)
            else:
                self._samples.append((t1, mw_to_w(self._power_mw())))
                energy_j = integrate_power_j(self._samples)
        except Exception as exc:
            if not self._is_error(exc):
                raise
            return Reading.missing_reading("nvml", f"NVML read failed: {exc}", duration_s)
        return Reading(backend="nvml", scope="board", measured=True, energy_j=energy_j,
                       duration_s=duration_s, domains_j={domain: energy_j},
                       warnings=tuple(warnings))

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
        powers_mw = [p for p in (self._p0_mw, self._power_mw()) if p is not None]
        energy_j = mw_to_w(sum(powers_mw) / len(powers_mw)) * duration_s
        why = ("counter did not move" if delta_mj <= 0 and duration_s >= self.update_period_s
               else f"window {duration_s * 1e3:.1f} ms is shorter than the counter's "
                    f"~{self.update_period_s * 1e3:.0f} ms update period")
        return energy_j, f"{why}; energy = board power x duration"

    def describe(self) -> str:
        av = self.availability()
        if not av.available:
            return f"nvml: unavailable ({av.reason})"
        how = ("total-energy counter" if self.mode == ENERGY_COUNTER
               else f"power sampled every {self.sample_interval_s * 1e3:.0f} ms "
                    "(no energy counter: pre-Volta board)")
        text = f"nvml: GPU {self.physical} ({self.board}), board energy by {how}, {self._lock.describe()}"
        if self.notes:
            text += f" [{'; '.join(self.notes)}]"
        return text

    def close(self) -> None:
        if isinstance(self._lock, FileLock):
            self._lock.close()
        if self._initialised:
            try:
                self._lib.nvmlShutdown()
            except Exception as exc:
                if not self._is_error(exc):
                    raise
            self._initialised = False
