"""Test doubles at the hardware boundary: a powercap tree, a pyRAPL and a pynvml stand-in.

They ship with the library (as Zeus ships its replaying double) so that the project's
tests, and anyone's research code, can run every meter's real logic without the hardware.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace

from .powercap import read_text


class FakePowercap:
    """A powercap tree under ``root`` with the files RAPL zones have."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def add_zone(self, name: str = "intel-rapl:0", label: str = "package-0", energy_uj: int = 0,
                 max_energy_range_uj: int | None = 262_143_328_850,
                 max_power_uw: int | None = None) -> Path:
        zone = self.root / name
        zone.mkdir(parents=True, exist_ok=True)
        (zone / "name").write_text(label + "\n")
        (zone / "energy_uj").write_text(f"{energy_uj}\n")
        if max_energy_range_uj is not None:
            (zone / "max_energy_range_uj").write_text(f"{max_energy_range_uj}\n")
        if max_power_uw is not None:
            (zone / "constraint_0_max_power_uw").write_text(f"{max_power_uw}\n")
        return zone

    def set_energy(self, name: str, energy_uj: int) -> None:
        # Write to a temporary file and rename, so a concurrent reader (the polling
        # thread) never sees a half-written number.
        target = self.root / name / "energy_uj"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(f"{energy_uj}\n")
        tmp.replace(target)


def denying_reader(denied: Iterable[str]) -> Callable[[Path], str]:
    """A file reader that raises PermissionError for files named in ``denied``.

    Tests run as root in some places, where chmod cannot take read access away.
    """
    names = set(denied)

    def read(path: Path) -> str:
        if path.name in names:
            raise PermissionError(13, "Permission denied", str(path))
        return read_text(path)

    return read


def ticking_reader(step_uj: int) -> Callable[[Path], str]:
    """A reader whose ``energy_uj`` files advance by ``step_uj`` more on every read."""
    reads: dict[Path, int] = {}

    def read(path: Path) -> str:
        text = read_text(path)
        if path.name != "energy_uj":
            return text
        reads[path] = reads.get(path, 0) + 1
        return str(int(text) + step_uj * reads[path])

    return read


def power_reader(power_w: float, clock: Callable[[], float] = time.perf_counter
                 ) -> Callable[[Path], str]:
    """A reader whose ``energy_uj`` files grow at ``power_w`` from the first read on."""
    start: list[float] = []

    def read(path: Path) -> str:
        text = read_text(path)
        if path.name != "energy_uj":
            return text
        if not start:
            start.append(clock())
        return str(int(text) + int((clock() - start[0]) * power_w * 1e6))

    return read


class FakePyRAPLException(Exception):
    """Shaped like pyRAPL.PyRAPLException."""


class FakePyRAPLCantInitDeviceAPI(FakePyRAPLException):
    """Shaped like pyRAPL.PyRAPLCantInitDeviceAPI (raised with no message, as pyRAPL does)."""


class _FakeDeviceAPI:
    """pyRAPL's DeviceAPI logic (device_api.py, 0.2.3) over a fake tree instead of /sys.

    Walks ``intel-rapl:0``, ``intel-rapl:1``, ... while they exist, keeps zones whose name
    contains "package" and whose id (``package-N``) is a socket, and raises
    CantInitDeviceAPI unless that leaves exactly one zone per socket. Each ``energy_uj`` is
    "opened" (read once) at construction, so an unreadable counter raises there, as
    ``open()`` does in pyRAPL.
    """

    def __init__(self, owner: FakePyRAPL, device: str) -> None:
        self._owner = owner
        sockets = sorted(owner.sockets)
        found = []
        rapl_id = 0
        while (owner.root / f"intel-rapl:{rapl_id}").exists():
            zone = owner.root / f"intel-rapl:{rapl_id}"
            label = owner.read(zone / "name")
            if "package" in label:
                package_id = int(label.strip().split("-")[1])
                if package_id in sockets:
                    found.append((package_id, zone, rapl_id))
            rapl_id += 1
        if len(found) != len(sockets):
            raise FakePyRAPLCantInitDeviceAPI()
        found.sort(key=lambda t: t[0])
        self._files = []
        for _, zone, rid in found:
            if device == "package":
                self._files.append(zone / "energy_uj")
                continue
            sub = 0
            while (dram := owner.root / f"intel-rapl:{rid}:{sub}").exists():
                if owner.read(dram / "name") == "dram\n":
                    self._files.append(dram / "energy_uj")
                    break
                sub += 1
            else:
                raise FakePyRAPLCantInitDeviceAPI()
        for f in self._files:
            owner.read(f)
        self._socket_ids = sockets

    def energy(self) -> tuple[float, ...]:
        self._owner._call("energy")
        result = [-1.0] * (self._socket_ids[-1] + 1)
        for socket_id, f in zip(self._socket_ids, self._files):
            result[socket_id] = float(self._owner.read(f))
        return tuple(result)


class FakePyRAPL:
    """Stands in for the ``pyRAPL`` module, reading a FakePowercap tree as pyRAPL reads /sys.

    ``sockets`` is what ``device_api.get_socket_ids()`` reports; ``read`` is the file
    reader (``ticking_reader`` etc. work here too); ``fail`` maps "get_socket_ids",
    "PkgAPI", "DramAPI" or "energy" to the exception that call raises. The tree layout:
    FakePowercap's flat one, a DRAM zone ``intel-rapl:N:M`` beside its package (pyRAPL
    looks under the package directory, so the fake follows the flat tree's siblings).
    """

    PyRAPLException = FakePyRAPLException
    PyRAPLCantInitDeviceAPI = FakePyRAPLCantInitDeviceAPI

    def __init__(self, root: Path, *, sockets: Iterable[int] = (0,),
                 read: Callable[[Path], str] = read_text,
                 fail: dict[str, BaseException] | None = None) -> None:
        self.root = Path(root)
        self.sockets = list(sockets)
        self.read = read
        self.fail = dict(fail or {})
        self.calls: list[str] = []
        self.device_api = SimpleNamespace(get_socket_ids=self._get_socket_ids)

    def _call(self, fn: str) -> None:
        self.calls.append(fn)
        if fn in self.fail:
            raise self.fail[fn]

    def _get_socket_ids(self) -> list[int]:
        self._call("get_socket_ids")
        return list(self.sockets)

    def PkgAPI(self, socket_ids: list[int] | None = None) -> _FakeDeviceAPI:  # noqa: N802
        self._call("PkgAPI")
        return _FakeDeviceAPI(self, "package")

    def DramAPI(self, socket_ids: list[int] | None = None) -> _FakeDeviceAPI:  # noqa: N802
        self._call("DramAPI")
        return _FakeDeviceAPI(self, "dram")


class FakeNVMLError(Exception):
    """Shaped like pynvml.NVMLError: the NVML return code is in ``value``."""

    MESSAGES = {3: "Not Supported", 9: "Driver Not Loaded", 12: "NVML Shared Library Not Found",
                15: "GPU is lost", 999: "Unknown Error"}

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return self.MESSAGES.get(self.value, f"NVML error {self.value}")


class FakeNvml:
    """Stands in for the ``pynvml`` module.

    ``energy_mj`` is the total-energy counter (set it, or let ``energy_step_mj`` advance it
    on every read); ``energy_counter=False`` is a pre-Volta board; ``power_mw`` is what
    nvmlDeviceGetPowerUsage reports. ``instant_power_w`` is the instant-power field
    (NVML_FI_DEV_POWER_INSTANT, served in milliwatts by nvmlDeviceGetFieldValues): watts, or
    a curve of watts over ``clock()`` (time.perf_counter by default); None, the default, is
    a board or driver without the field (its per-field return is Not Supported, as NVML
    reports it). ``fail`` maps a function name to an NVML error code.
    """

    NVMLError = FakeNVMLError
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_DRIVER_NOT_LOADED = 9
    NVML_ERROR_LIBRARY_NOT_FOUND = 12
    NVML_FI_DEV_POWER_INSTANT = 186  # pynvml's value
    NVML_VALUE_TYPE_UNSIGNED_INT = 1

    def __init__(self, *, gpus: int = 1, energy_counter: bool = True, energy_mj: int = 0,
                 energy_step_mj: int = 0, power_mw: int = 50_000, name: str = "Fake Tesla V100",
                 library_found: bool = True, fail: dict[str, int] | None = None,
                 instant_power_w: float | Callable[[float], float] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.gpus = gpus
        self.energy_counter = energy_counter
        self.energy_mj = energy_mj
        self.energy_step_mj = energy_step_mj
        self.power_mw = power_mw
        self.name = name
        self.library_found = library_found
        self.fail = dict(fail or {})
        self.instant_power_w = instant_power_w
        self.clock = clock
        self.calls: list[str] = []
        self.initialised = 0

    def _call(self, fn: str) -> None:
        self.calls.append(fn)
        if fn in self.fail:
            raise FakeNVMLError(self.fail[fn])

    def nvmlInit(self) -> None:
        if not self.library_found:
            raise FakeNVMLError(12)
        self._call("nvmlInit")
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._call("nvmlShutdown")
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        self._call("nvmlDeviceGetCount")
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, index: int) -> tuple[str, int]:
        self._call("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < self.gpus:
            raise FakeNVMLError(2)
        return ("gpu", index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> tuple[str, str]:
        self._call("nvmlDeviceGetHandleByUUID")
        return ("gpu", uuid)

    def nvmlDeviceGetName(self, handle) -> bytes:
        self._call("nvmlDeviceGetName")
        return self.name.encode()  # older pynvml returns bytes

    def nvmlDeviceGetTotalEnergyConsumption(self, handle) -> int:
        self._call("nvmlDeviceGetTotalEnergyConsumption")
        if not self.energy_counter:
            raise FakeNVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        self.energy_mj += self.energy_step_mj
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle) -> int:
        self._call("nvmlDeviceGetPowerUsage")
        return self.power_mw

    def nvmlDeviceGetFieldValues(self, handle, field_ids) -> list[SimpleNamespace]:
        """Shaped like pynvml's array of c_nvmlFieldValue_t: a failed field is reported in
        its ``nvmlReturn``, not raised (the call itself raises only through ``fail``)."""
        self._call("nvmlDeviceGetFieldValues")
        out = []
        for field_id in field_ids:
            fv = SimpleNamespace(fieldId=field_id, scopeId=0, timestamp=0, latencyUsec=0,
                                 valueType=self.NVML_VALUE_TYPE_UNSIGNED_INT,
                                 nvmlReturn=self.NVML_ERROR_NOT_SUPPORTED,
                                 value=SimpleNamespace(uiVal=0))
            power = self.instant_power_w
            if field_id == self.NVML_FI_DEV_POWER_INSTANT and power is not None:
                watts = power(self.clock()) if callable(power) else power
                fv.nvmlReturn = 0
                fv.value.uiVal = round(watts * 1000)
            out.append(fv)
        return out
