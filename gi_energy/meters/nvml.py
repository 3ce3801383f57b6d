"""NVML (NVIDIA board energy). Being built: reports itself unavailable."""

from __future__ import annotations

from .base import Availability, Meter
from .reading import Reading


def cuda_index(device: str) -> int:
    """0 for "cuda", N for "cuda:N"."""
    _, _, idx = device.partition(":")
    return int(idx) if idx else 0


class NvmlMeter(Meter):
    name = "nvml"
    measured = True

    def __init__(self, *, device_index: int = 0, pynvml=None, lock_dir=None,
                 idle_baseline_s: float = 0.0, cuda_sync=None, **_):
        super().__init__(idle_baseline_s=idle_baseline_s, cuda_sync=cuda_sync)
        self.notes: tuple[str, ...] = ()

    def _probe(self) -> Availability:
        return Availability(False, "NVML backend not built yet")

    def _begin(self) -> None:
        pass

    def _end(self) -> Reading:
        return Reading.missing_reading("nvml", "NVML backend not built yet")
