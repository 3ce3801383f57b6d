"""A worker process that ends with its parent.

A loky worker holds hundreds of MB (torch, the dataset) and possibly a meter lock, and
nothing else stops it once its parent is gone: after kill -9 of the main process alone
the workers would stay, waiting for work that never comes. :func:`die_with_parent` is
their initializer. Kept free of heavy imports: it runs first in every new worker.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

# prctl(2) option: the signal a process gets when the thread that forked it exits.
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, pdeathsig: bool = True, poll_s: float = 0.5) -> None:
    """End this worker process when ``parent_pid`` (the process that started it) ends.

    Run first in a new worker (the loky initializer). A worker holds hundreds of MB and
    possibly a meter lock, and nothing else would stop it after its parent is killed
    (kill -9 of the main process alone). On Linux, with ``pdeathsig``, the kernel sends
    SIGKILL at once (``PR_SET_PDEATHSIG``; it fires when the *thread* that forked us
    exits, so the caller passes False unless that was the main thread); everywhere, a
    daemon thread polls ``os.getppid()`` every ``poll_s`` seconds and exits the process
    when it changes.
    """
    if pdeathsig:
        _set_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before we could ask to follow it
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid, poll_s), name="gi-energy-parent-watch",
                     daemon=True).start()


def _set_pdeathsig(sig: int) -> bool:
    """Ask the kernel for ``sig`` when our parent dies; False where prctl is missing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, poll_s: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(poll_s)
    os._exit(1)  # orphaned: nobody will read our result
