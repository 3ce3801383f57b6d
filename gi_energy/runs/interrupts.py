"""Bookkeeping that a Ctrl-C or a SIGTERM must not cut in two.

A finished evaluation is recorded twice: a line in the run's journal (trained.jsonl, so
a resume counts its energy once) and the run's own list of what arrived (so the
interrupted run's evaluations.csv shows it). A signal that lands between the two, for
instance while the journal's fsync waits on the disk, left an evaluation journaled but
missing from the interrupted run's files.

An :class:`InterruptGate` is opened for the length of a run. SIGINT and SIGTERM then pass
through it: outside a held section they reach their own handlers at once; inside one
(``with gate:``) they wait for its end. Holding costs two additions, no system call, so
it can wrap every evaluation of a replay that runs thousands a second.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class InterruptGate:
    """``open()`` routes SIGINT and SIGTERM through the gate (main thread only: handlers
    can be set nowhere else; elsewhere the gate holds nothing), ``close()`` puts the
    handlers back. ``with gate:`` is a held section; nested sections hold until the
    outermost ends.

    A signal that comes while nothing is held, or at the end of a held section, goes to
    the handler it had before the gate opened: a Python handler is called (Ctrl-C raises
    KeyboardInterrupt, gi-energy's SIGTERM handler raises Terminated), a default action
    is taken by sending the signal again with the default back, an ignored signal stays
    ignored. A signal whose handler was not set from Python is left alone (it could not
    be put back)."""

    def __init__(self) -> None:
        self.depth = 0
        self.caught: list[int] = []
        self.previous: dict[int, object] = {}

    def open(self) -> InterruptGate:
        if threading.current_thread() is threading.main_thread():
            for sig in HELD_SIGNALS:
                if signal.getsignal(sig) is not None:
                    self.previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def close(self) -> None:
        previous, self.previous = self.previous, {}
        for sig, handler in previous.items():
            if signal.getsignal(sig) == self._on_signal:  # not replaced since (a handler may have)
                signal.signal(sig, handler)

    def __enter__(self) -> InterruptGate:
        self.depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self.depth -= 1
        if self.caught and not self.depth:
            signum = self.caught[0]
            self.caught.clear()
            self._deliver(signum)

    @contextlib.contextmanager
    def shielded(self):
        """A held section whose signals are dropped at its end: the saving a first Ctrl-C
        or SIGTERM started is what a second one asks for, so it is not cut short (the
        first signal's exit status stands; kill -9 still stops it)."""
        self.depth += 1
        try:
            yield self
        finally:
            self.depth -= 1
            if not self.depth:
                self.caught.clear()

    def _on_signal(self, signum: int, frame) -> None:
        if self.depth:
            self.caught.append(signum)
        else:
            self._deliver(signum)

    def _deliver(self, signum: int) -> None:
        handler = self.previous.get(signum, signal.SIG_DFL)
        if callable(handler):
            handler(signum, None)
        elif handler == signal.SIG_DFL:
            self.close()
            os.kill(os.getpid(), signum)  # the default action, now that the default is back
