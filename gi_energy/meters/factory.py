"""Choosing a meter from the problem's [energy] table, and listing every backend's status."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from gi_energy.config.problem import EnergyConfig
from gi_energy.errors import MeterError

from .base import BackendStatus, Meter
from .combined import CombinedMeter
from .estimate import EstimateMeter
from .locks import default_lock_dir
from .nvml import NvmlMeter
from .nvmldevice import cuda_index
from .powercap import ReadText, read_text
from .rapl import DEFAULT_POWERCAP_ROOT, DEFAULT_PROC_STAT, RaplMeter

METER_NAMES = ("auto", "rapl", "nvml", "estimate")


def create_meter(energy: EnergyConfig, *, device: str = "cpu", lock_dir: Path | None = None,
                 cuda_sync: Callable[[], None] | None = None,
                 powercap_root: Path = DEFAULT_POWERCAP_ROOT, proc_stat: Path = DEFAULT_PROC_STAT,
                 nvml: ModuleType | None = None, powercap_read: ReadText = read_text) -> Meter:
    """The meter ``energy.meter`` names, for work on ``device`` ("cpu", "cuda", "cuda:N").

    ``auto`` is RAPL (plus NVML when the device is a GPU) where available, else the
    estimate, whose ``describe()`` says why each measured backend was not used. When only
    one of RAPL and NVML is available for GPU work, that one is used alone: its
    ``describe()`` and every reading's warnings say which energy is not included. Asking
    for ``rapl`` or ``nvml`` explicitly where it is unavailable raises MeterError with the
    reason. ``powercap_root``, ``powercap_read`` (the file reader), ``proc_stat`` and
    ``nvml`` (a pynvml-like module) are injectable for tests.
    """
    if energy.meter not in METER_NAMES:
        raise MeterError(f"unknown meter {energy.meter!r}; expected one of {', '.join(METER_NAMES)}")
    on_gpu = device.startswith("cuda")
    lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()

    def rapl() -> RaplMeter:
        return RaplMeter(powercap_root=powercap_root, proc_stat=proc_stat,
                         attribution=energy.attribution, lock_dir=lock_dir,
                         idle_baseline_s=energy.idle_baseline_s, read=powercap_read)

    def gpu() -> NvmlMeter:
        return NvmlMeter(device_index=cuda_index(device), pynvml=nvml, lock_dir=lock_dir,
                         idle_baseline_s=energy.idle_baseline_s, cuda_sync=cuda_sync)

    def estimate(reasons: tuple[str, ...] = ()) -> EstimateMeter:
        return EstimateMeter(cpu_watts_per_core=energy.cpu_watts_per_core,
                             gpu_watts=energy.gpu_watts, device=device, fallback_reasons=reasons,
                             idle_baseline_s=energy.idle_baseline_s, cuda_sync=cuda_sync)

    if energy.meter == "estimate":
        return estimate(("meter = \"estimate\" in the problem",))
    if energy.meter == "rapl":
        m = rapl()
        m.require_available()
        return m
    if energy.meter == "nvml":
        if not on_gpu:
            raise MeterError(f"meter = \"nvml\" meters a GPU but the device is {device!r}; "
                             "use device = \"cuda\" or meter = \"auto\"")
        m = gpu()
        m.require_available()
        return m

    # auto
    cpu_meter = rapl()
    cpu_av = cpu_meter.availability()
    reasons = [] if cpu_av.available else [f"no RAPL: {cpu_av.reason}"]
    gpu_meter = None
    if on_gpu:
        gpu_meter = gpu()
        gpu_av = gpu_meter.availability()
        if not gpu_av.available:
            reasons.append(f"no NVML: {gpu_av.reason}")
            gpu_meter = None
    if cpu_av.available and gpu_meter is not None:
        return CombinedMeter((cpu_meter, gpu_meter), cuda_sync=cuda_sync)
    if cpu_av.available:
        if on_gpu:
            # The GPU board is usually the main consumer: a package-only number must not
            # pass for the work's energy without saying so on every reading.
            why = "; ".join(reasons)
            cpu_meter.notes = (why, "GPU board energy is not included")
            cpu_meter.reading_warnings = (f"GPU board energy not included: {why}",)
        return cpu_meter
    if gpu_meter is not None:
        # A GPU board measured alone beats an estimate; describe() says the CPU is left out.
        gpu_meter.notes = tuple(reasons) + ("CPU package energy is not included",)
        return gpu_meter
    return estimate(tuple(reasons))


def backend_statuses(energy: EnergyConfig | None = None, *,
                     powercap_root: Path = DEFAULT_POWERCAP_ROOT,
                     proc_stat: Path = DEFAULT_PROC_STAT,
                     nvml: ModuleType | None = None) -> list[BackendStatus]:
    """Every backend, available or not, and why (for ``gi-energy meters``)."""
    energy = energy or EnergyConfig()
    statuses = []
    lock_dir = default_lock_dir()
    rapl = RaplMeter(powercap_root=powercap_root, proc_stat=proc_stat,
                     attribution=energy.attribution, lock_dir=lock_dir)
    av = rapl.availability()
    statuses.append(BackendStatus("rapl", av.available, True,
                                  rapl.describe() if av.available else av.reason))
    gpu = NvmlMeter(device_index=0, pynvml=nvml, lock_dir=lock_dir)
    av = gpu.availability()
    statuses.append(BackendStatus("nvml", av.available, True,
                                  gpu.describe() if av.available else av.reason))
    gpu.close()
    statuses.append(BackendStatus("estimate", True, False,
                                  f"always available; {energy.cpu_watts_per_core:g} W/core x "
                                  "process CPU time, not a measurement"))
    return statuses
