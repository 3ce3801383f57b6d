"""One NVIDIA GPU through pynvml (package nvidia-ml-py): the library boundary of NvmlMeter.

Opening a device finds the board a CUDA ordinal names (CUDA numbers only the GPUs in
CUDA_VISIBLE_DEVICES, NVML numbers all of them), learns what it can measure (Volta and
newer boards have a total-energy counter in millijoules; older boards only report power
in milliwatts) and says why not when it cannot. The reads return NVML's figures and raise
the library's own NVMLError, which the meter turns into missing readings. The pynvml
module is injectable, so tests run the real logic on a fake library.
"""

from __future__ import annotations

from types import ModuleType

from .base import Availability
from .units import mw_to_w

ENERGY_COUNTER = "energy-counter"
POWER_SAMPLING = "power-sampling"

INSTANT_POWER_FIELD = "NVML_FI_DEV_POWER_INSTANT"
# c_nvmlValue_t member for each nvmlValueType_t.
_VALUE_MEMBERS = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal",
                  6: "usVal"}


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


class NvmlDevice:
    """One GPU's handle and what it can measure; empty facts until open() succeeds."""

    def __init__(self, pynvml: ModuleType | None = None) -> None:
        self.lib = pynvml
        """The pynvml module (imported by library() when none was given)."""
        self.handle = None
        self.mode: str | None = None
        """ENERGY_COUNTER or POWER_SAMPLING once open; None before or when unavailable."""
        self.board = ""
        """The board's name as NVML gives it."""
        self.physical = ""
        """The NVML index or UUID the CUDA ordinal mapped to."""
        self.instant_field: int | None = None
        """The instant-power field id, once probe_instant_power() found it readable."""
        self._initialised = False

    def library(self) -> ModuleType:
        if self.lib is None:
            import pynvml

            self.lib = pynvml
        return self.lib

    def is_error(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the library's NVMLError (anything else is a bug to raise)."""
        error_type = getattr(self.lib, "NVMLError", None)
        return error_type is not None and isinstance(exc, error_type)

    def _not_supported(self, exc: BaseException) -> bool:
        code = getattr(self.lib, "NVML_ERROR_NOT_SUPPORTED", 3)
        return getattr(exc, "value", None) == code

    def error_text(self, exc: BaseException) -> str:
        return str(exc) if self.is_error(exc) else f"{type(exc).__name__}: {exc}"

    def open(self, ordinal: int, visible: str | None) -> Availability:
        """Start NVML and find CUDA ordinal ``ordinal`` under ``visible``
        (CUDA_VISIBLE_DEVICES); never raises an NVML error, says why not in the reason."""
        try:
            lib = self.library()
        except ImportError as exc:
            return Availability(False, f"pynvml is not installed (pip install nvidia-ml-py): {exc}")
        try:
            lib.nvmlInit()
            self._initialised = True
            count = lib.nvmlDeviceGetCount()
            if count == 0:
                return Availability(False, "NVML found no NVIDIA GPU")
            try:
                which = visible_device(ordinal, visible)
            except IndexError as exc:
                return Availability(False, str(exc))
            if isinstance(which, str):
                self.handle = lib.nvmlDeviceGetHandleByUUID(which)
                self.physical = which
            else:
                if which >= count:
                    return Availability(False, f"GPU {which} requested but NVML sees {count}")
                self.handle = lib.nvmlDeviceGetHandleByIndex(which)
                self.physical = str(which)
            self.board = _text(lib.nvmlDeviceGetName(self.handle))
        except Exception as exc:
            if not self.is_error(exc):
                raise
            hint = ""
            if getattr(exc, "value", None) in (getattr(lib, "NVML_ERROR_LIBRARY_NOT_FOUND", 12),
                                               getattr(lib, "NVML_ERROR_DRIVER_NOT_LOADED", 9)):
                hint = " (no NVIDIA driver on this machine)"
            return Availability(False, f"NVML cannot start: {exc}{hint}")
        return self._find_mode()

    def _find_mode(self) -> Availability:
        """The energy counter where the board has one, else power sampling."""
        try:
            self.energy_mj()
            self.mode = ENERGY_COUNTER
        except Exception as exc:
            if not self.is_error(exc):
                raise
            if not self._not_supported(exc):
                return Availability(False, f"NVML energy counter of {self.board}: {exc}")
            try:
                self.power_mw()
            except Exception as exc2:
                if not self.is_error(exc2):
                    raise
                return Availability(False, f"{self.board} reports neither energy nor power: {exc2}")
            self.mode = POWER_SAMPLING
        return Availability(True, "")

    def probe_instant_power(self) -> str:
        """"" when the instant board-power field can be read, else why not; never raises:
        older drivers and boards lack it, and the counter works without it."""
        field = getattr(self.lib, INSTANT_POWER_FIELD, None)
        if field is None:
            return f"this pynvml has no {INSTANT_POWER_FIELD}"
        self.instant_field = field
        try:
            self.instant_power_w()
        except Exception as exc:  # noqa: BLE001 - an optional field must not fail availability
            self.instant_field = None
            return f"{INSTANT_POWER_FIELD} unreadable on {self.board}: {self.error_text(exc)}"
        return ""

    # -- reads (NVMLError when the board does not answer) --------------------------------
    def energy_mj(self) -> int:
        """The total-energy counter, in millijoules."""
        return self.lib.nvmlDeviceGetTotalEnergyConsumption(self.handle)

    def power_mw(self) -> float:
        """Board power, in milliwatts (on Ampere and newer a one-second average)."""
        return float(self.lib.nvmlDeviceGetPowerUsage(self.handle))

    def power_w(self) -> float:
        return mw_to_w(self.power_mw())

    def instant_power_w(self) -> float:
        """One read of the instant board-power field (milliwatts in NVML), in watts.

        Not nvmlDeviceGetPowerUsage: on Ampere and newer boards that is a one-second
        average, which under-read a 2 s burst on an H100 by 20%.
        """
        (value,) = self.lib.nvmlDeviceGetFieldValues(self.handle, [self.instant_field])
        if value.nvmlReturn != 0:
            raise self.lib.NVMLError(value.nvmlReturn)
        member = _VALUE_MEMBERS.get(value.valueType)
        if member is None:
            raise ValueError(f"unknown NVML value type {value.valueType}")
        return mw_to_w(float(getattr(value.value, member)))

    def shutdown(self) -> None:
        """Shut NVML down once, if open() started it; an NVML error here is ignored."""
        if self._initialised:
            try:
                self.lib.nvmlShutdown()
            except Exception as exc:
                if not self.is_error(exc):
                    raise
            self._initialised = False
