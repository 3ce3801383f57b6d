"""Unit conversions at the vendor boundary: every counter is turned into SI units here.

powercap counts microjoules, NVML's energy counter millijoules, its power milliwatts and
its sample timestamps microseconds.
"""

from __future__ import annotations


def uj_to_j(energy_uj: float) -> float:
    return energy_uj * 1e-6


def mj_to_j(energy_mj: float) -> float:
    return energy_mj * 1e-3


def mw_to_w(power_mw: float) -> float:
    return power_mw * 1e-3


def us_to_s(time_us: float) -> float:
    return time_us * 1e-6
