"""Who is training a configuration right now: the owner of a lease in the store, and
whether a lease is still held by a live process.

A process that is about to train a (genome, repeat) writes a lease row naming itself
(a random token, its pid, its host, its process start time) and keeps the row's heartbeat
fresh while it trains (:class:`Heartbeat`). Another process that wants the same
configuration sees the lease and waits for the result instead of training it again. A
lease is *stale*, and may be taken over, when its owner is gone: on this host, its pid is
no longer the process that wrote it (dead, a zombie, or the pid reused by another
process); on any host, when its heartbeat is older than :data:`LEASE_TIMEOUT_S` (a
process on another machine, or one stopped with SIGSTOP for that long).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

# How often a lease's heartbeat is refreshed, and how old a heartbeat may get before the
# lease counts as abandoned. The gap leaves room for a store busy with other writers.
HEARTBEAT_S = 5.0
LEASE_TIMEOUT_S = 60.0


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot, from /proc), or None
    where /proc does not say (not Linux, no such process). With the pid it names one
    process for good: a reused pid has another start time."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int, start: str | None) -> bool:
    """Whether the process ``pid`` that started at ``start`` still runs (on this host)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[-1].split()
    except FileNotFoundError:
        return False
    except OSError:
        fields = []
    if fields:
        if fields[0] in ("Z", "X"):  # a zombie has exited; only its exit status is left
            return False
        return start is None or len(fields) <= 19 or fields[19] == start
    try:  # no /proc: ask the kernel
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class LeaseOwner:
    """One claimant: a token unique to it, and the process and host it runs in."""

    token: str
    pid: int
    host: str
    start: str | None

    @classmethod
    def this_process(cls) -> LeaseOwner:
        pid = os.getpid()
        return cls(token=uuid.uuid4().hex, pid=pid, host=socket.gethostname(), start=process_start(pid))


def is_stale(pid: int, host: str, start: str | None, heartbeat_s: float, *, now_s: float | None = None,
             timeout_s: float = LEASE_TIMEOUT_S) -> bool:
    """Whether a lease held by (pid, host, start) with this heartbeat may be taken over."""
    now_s = time.time() if now_s is None else now_s
    if now_s - heartbeat_s > timeout_s:
        return True
    return host == socket.gethostname() and not _alive(int(pid), start)


class Heartbeat:
    """A daemon thread that calls ``beat()`` every ``every_s`` until stopped; a failing
    beat is skipped (the next one tries again, and a lease outlives a few misses)."""

    def __init__(self, beat: Callable[[], None], every_s: float = HEARTBEAT_S):
        self._beat = beat
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gi-energy-lease-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._every_s):
            with contextlib.suppress(Exception):
                self._beat()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._every_s + 1.0)
