"""How often a running run rewrites its result files (evaluations.csv, front.csv,
history.csv), so that a run killed at any moment leaves results ``compare`` can read.

Each rewrite costs time in proportion to the run's evaluations so far, so rewriting after
every generation of a long, fast run (a replay does thousands of evaluations a second)
would make the run quadratic. :class:`Pacer` writes the first time it is asked, then only
once the time since the last write is at least ``ratio`` times what that write took: the
writes then cost at most 1/``ratio`` of the run's time, and a small run, whose writes take
milliseconds, rewrites after every generation.

``first_after_s`` holds the first write back until the run has gone on that long (a
replay: its every write can be redone free, so a replay shorter than that writes its
files once, at the end).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """``maybe(write)`` calls ``write()`` when it is due (see the module docstring)."""

    def __init__(self, ratio: float = 20.0, clock: Callable[[], float] = time.perf_counter, *,
                 first_after_s: float = 0.0):
        self.ratio = ratio
        self.clock = clock
        self.first_after_s = first_after_s
        self._started = clock()
        self._last_end: float | None = None
        self._last_cost_s = 0.0
        self.writes = 0

    def due(self) -> bool:
        if self._last_end is None:
            return self.clock() - self._started >= self.first_after_s
        return self.clock() - self._last_end >= self.ratio * self._last_cost_s

    def maybe(self, write: Callable[[], object]) -> bool:
        """Write now if due; whether it wrote."""
        if not self.due():
            return False
        start = self.clock()
        write()
        self._last_end = self.clock()
        self._last_cost_s = self._last_end - start
        self.writes += 1
        return True
