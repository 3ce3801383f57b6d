"""Where the raw RAPL counters come from: pyRAPL, or the powercap files read directly.

Both sources return the same thing: each counted domain's raw ``energy_uj`` (µJ, as the
hardware counts it, wrapping at ``max_energy_range_uj``). Everything the meter adds on
top -- wrap correction with the ranges read from the powercap tree, the polling thread,
the exclusive lock, cpu-share, the idle baseline -- lives in ``rapl.py`` and works the
same on either source.

pyRAPL (the project's RAPL dependency) is used where its assumptions hold: one
``package-N`` zone per CPU socket (its ``device_api.get_socket_ids()``), readable
``energy_uj``. Its PkgAPI / DramAPI then supply the raw counters. It is not used when

- it cannot be imported or its device APIs raise (``energy_uj`` is root-only since the
  2020 PLATYPUS fix; pyRAPL raises on opening it, and the direct reader will say so);
- there are more package zones than sockets (multi-die parts whose zones mirror one
  socket: pyRAPL refuses them; the direct reader counts same-named zones once);
- the package zones are not ``package-<socket>`` one for one;
- a ``powercap_root`` other than /sys/class/powercap was given (pyRAPL reads only /sys).
"""

from __future__ import annotations

import logging
import re
import warnings
from abc import ABC, abstractmethod
from typing import Any

from .powercap import ReadText, Zone

PYRAPL = "pyRAPL"
POWERCAP_FILES = "powercap files"

MSR_PACKAGE_DIR = re.compile(r"^intel-rapl:\d+$")
"""A top-level MSR zone directory: the ones pyRAPL walks (MMIO zones it never sees)."""


class CounterSource(ABC):
    """Raw per-domain counters of the ``zones`` found in the powercap tree."""

    name: str = ""

    def __init__(self, zones: tuple[Zone, ...]) -> None:
        self.zones = zones

    @abstractmethod
    def read_uj(self) -> dict[str, int]:
        """Each zone's raw counter in µJ, keyed by ``Zone.domain``; OSError/ValueError on
        a failed read."""

    def close(self) -> None:  # noqa: B027 - optional; the direct reader holds nothing
        """Release open files."""


class PowercapCounters(CounterSource):
    """Reads each zone's ``energy_uj`` file (through ``read``, injectable for tests)."""

    name = POWERCAP_FILES

    def __init__(self, zones: tuple[Zone, ...], read: ReadText) -> None:
        super().__init__(zones)
        self._read = read

    def read_uj(self) -> dict[str, int]:
        return {z.domain: int(self._read(z.energy_file).strip()) for z in self.zones}


class PyRAPLCounters(CounterSource):
    """pyRAPL's PkgAPI (and DramAPI where the tree has DRAM zones) as the counter source.

    ``energy()`` returns a tuple indexed by socket id (-1 for a socket it does not read);
    socket ``s`` is our ``package-s`` / ``dram-s`` zone.
    """

    name = PYRAPL

    def __init__(self, zones: tuple[Zone, ...], socket_ids: list[int], pkg_api: Any,
                 dram_api: Any | None) -> None:
        super().__init__(zones)
        self.socket_ids = list(socket_ids)
        self._apis = [("package", pkg_api)] + ([("dram", dram_api)] if dram_api is not None
                                                else [])

    def read_uj(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for prefix, api in self._apis:
            try:
                values = api.energy()
            except (OSError, ValueError):
                raise
            except Exception as exc:  # a third-party library: any failure is a failed read
                raise OSError(f"pyRAPL {prefix} read failed: {_why(exc)}") from exc
            for s in self.socket_ids:
                value = values[s] if s < len(values) else -1
                if value < 0:
                    raise ValueError(f"pyRAPL returned no {prefix} counter for socket {s}")
                out[f"{prefix}-{s}"] = int(value)
        return out

    def close(self) -> None:
        # pyRAPL opens each energy_uj once and never closes it.
        for _, api in self._apis:
            for f in getattr(api, "_sys_files", ()):
                try:
                    f.close()
                except OSError:
                    pass
        self._apis = []


class PyRAPLUnusable(Exception):
    """pyRAPL cannot be the source here; the message says why (shown in describe())."""


def _why(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def import_pyrapl() -> Any:
    """``import pyRAPL`` without its noise.

    pyRAPL logs a root-logger warning for each optional output it cannot import (pymongo,
    pandas); ``logging.warning`` would also install a stderr handler on the root logger
    (an implicit basicConfig). Both are suppressed; so are its DeprecationWarnings.
    """
    root = logging.getLogger()
    guard = logging.NullHandler()  # root has a handler, so no implicit basicConfig
    root.addHandler(guard)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pyRAPL
    finally:
        logging.disable(previous)
        root.removeHandler(guard)
    return pyRAPL


def open_pyrapl(pyrapl: Any, zones: tuple[Zone, ...]) -> PyRAPLCounters:
    """pyRAPL's device APIs over ``zones``, or PyRAPLUnusable saying why not."""
    try:
        socket_ids = sorted(set(pyrapl.device_api.get_socket_ids()))
    except Exception as exc:
        raise PyRAPLUnusable(f"no socket topology ({_why(exc)})") from exc
    if not socket_ids:
        raise PyRAPLUnusable("no CPU sockets reported")
    packages = [z for z in zones if z.domain.startswith("package")]
    package_dirs = [p for z in packages for p in (z.path, *z.mirrors)
                    if MSR_PACKAGE_DIR.match(p.name)]
    if len(package_dirs) > len(socket_ids):
        raise PyRAPLUnusable(f"{len(package_dirs)} package zones for {len(socket_ids)} "
                             "socket(s): the zones mirror (multi-die part), which pyRAPL "
                             "would refuse or sum")
    expected = [f"package-{s}" for s in socket_ids]
    if sorted(z.domain for z in packages) != expected:
        raise PyRAPLUnusable(f"package zones {sorted(z.domain for z in packages)} are not "
                             f"one per socket {socket_ids}")
    drams = sorted(z.domain for z in zones if z.domain.startswith("dram"))
    if drams and drams != [f"dram-{s}" for s in socket_ids]:
        raise PyRAPLUnusable(f"DRAM zones {drams} are not one per socket {socket_ids}")
    try:
        pkg_api = pyrapl.PkgAPI()
    except Exception as exc:
        raise PyRAPLUnusable(f"PkgAPI raised {_why(exc)}") from exc
    dram_api = None
    if drams:
        try:
            dram_api = pyrapl.DramAPI()
        except Exception as exc:
            PyRAPLCounters(zones, socket_ids, pkg_api, None).close()
            raise PyRAPLUnusable(f"DramAPI raised {_why(exc)}") from exc
    counters = PyRAPLCounters(zones, socket_ids, pkg_api, dram_api)
    try:
        counters.read_uj()
    except (OSError, ValueError) as exc:
        counters.close()
        raise PyRAPLUnusable(f"reading its counters failed ({_why(exc)})") from exc
    return counters
