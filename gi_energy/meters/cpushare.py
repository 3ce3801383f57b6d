"""cpu-share attribution: a package's energy split by this process's share of CPU time.

The share is (this process's CPU seconds in the window) / (CPU seconds every process on
the machine was busy in the window, from /proc/stat). Idle time is left out of the
denominator, so the package's idle power is spread over whoever was working.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# /proc/stat "cpu" columns that are busy time. guest and guest_nice are already inside
# user and nice, so adding them would count virtual-machine time twice; idle and iowait
# are not work.
_BUSY_COLUMNS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal


def clock_ticks_per_s() -> int:
    return os.sysconf("SC_CLK_TCK")


def read_busy_ticks(proc_stat: Path) -> int:
    """Whole-machine busy CPU time in clock ticks (USER_HZ) from the aggregate cpu line."""
    with open(proc_stat) as f:
        for line in f:
            if line.startswith("cpu "):
                fields = [int(v) for v in line.split()[1:]]
                return sum(fields[i] for i in _BUSY_COLUMNS if i < len(fields))
    raise ValueError(f"{proc_stat}: no aggregate 'cpu' line")


@dataclass(frozen=True)
class Share:
    fraction: float
    warning: str | None = None


def cpu_share(process_cpu_s: float, system_busy_s: float) -> Share | None:
    """This process's fraction of the machine's busy CPU time; None if nothing was busy.

    /proc/stat counts in 10 ms ticks while the process clock is finer, so a short window
    can show the process using more than the machine: the fraction is clamped to 1.
    """
    if system_busy_s <= 0:
        return None
    fraction = max(0.0, process_cpu_s) / system_busy_s
    if fraction > 1.0:
        return Share(1.0, f"process CPU time {process_cpu_s:.3f} s exceeds the machine's busy "
                          f"time {system_busy_s:.3f} s (tick resolution); share clamped to 1")
    return Share(fraction)
