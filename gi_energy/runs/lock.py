"""One process at a time in a run directory: an exclusive lock on ``run.lock`` in it.

A run (new or resumed) holds the lock from before its first write to the folder until it
ends; a second ``--resume`` of the same folder meanwhile is refused at once, having
touched nothing. The lock is the kernel's (``fcntl.flock`` on an open file), so it goes
with the process however that ends, ``kill -9`` included: nothing stale is left to
clean up. The file itself stays (empty of meaning once unlocked); it holds the pid and
host of the holder, only to name them in the refusal.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from pathlib import Path

from gi_energy.errors import UsageError

from .files import now_iso

LOCK_NAME = "run.lock"


class RunDirectoryBusy(UsageError):
    """Another process is running in this run directory."""


class RunLock:
    """The lock of one run directory; ``acquire()`` or use as a context manager."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None
        self._stamped = False

    def acquire(self) -> RunLock:
        """Take the lock, or raise RunDirectoryBusy naming the holder (never waits)."""
        if self._fd is None:
            self._lock(os.O_CREAT)
        if not self._stamped:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
                os.pwrite(self._fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                "since": now_iso()}).encode() + b"\n", 0)
            self._stamped = True
        return self

    def acquire_existing(self) -> bool:
        """Take the lock if the folder has its lock file already, creating and writing
        nothing (:meth:`acquire` later names this process in it); False where there is no
        lock file, so no holder. RunDirectoryBusy if another process holds it.

        A new run takes it before it opens anything outside the folder (the store): a run
        refused because another process works in ``--out`` then leaves no trace."""
        if self._fd is not None:
            return True
        if not self.run_dir.is_dir():
            return False  # no folder yet (or not a folder: create_locked says so)
        try:
            self._lock(0)
        except FileNotFoundError:
            return False
        return True

    def _lock(self, create: int) -> None:
        flags = os.O_RDWR | create | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            if not create and isinstance(exc, FileNotFoundError):
                raise  # no lock file: acquire_existing's answer
            raise UsageError(f"{self.run_dir}: cannot open its lock file {LOCK_NAME}: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunDirectoryBusy(f"{self.run_dir} is in use by another gi-energy process{holder}; "
                                   "wait for it to end (or stop it), then resume") from None
        except OSError as exc:
            os.close(fd)
            raise UsageError(f"{self.run_dir}: cannot lock {LOCK_NAME}: {exc}") from None
        self._fd = fd
        self._stamped = False

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    close = release

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def claim_new(path: Path, cli: bool = False) -> RunLock:
    """The lock of a new run's folder, taken if the folder is there already, before the
    store is opened: a run refused because ``path`` holds a run, or another process works
    in it, creates and changes nothing (no store file, nothing in the folder).
    :func:`create_locked` takes it for good once the store is open. ``cli``: the refusal
    names the command line's flags, else the library's arguments."""
    lock = RunLock(path)
    lock.acquire_existing()  # another process working in it is named first
    if (path / "run.json").exists():
        lock.release()
        hint = f"use --resume {path} to continue it, or choose another --out" if cli else \
            f"continue it with resume={str(path)!r}, or choose another out="
        raise UsageError(f"{path} already holds a run; {hint}")
    return lock


def create_locked(path, problem, command: str, settings=None, *, lock: RunLock | None = None, **create):
    """A new run directory (:meth:`RunDirectory.create`, given ``create``'s keywords) and
    its lock, taken before anything is written: of two processes starting a run in the
    same folder at once, the second stops at the lock (or finds the first's run.json),
    never writing over it. ``lock``: the folder's lock taken earlier
    (:meth:`RunLock.acquire_existing`), now held for the run."""
    from .rundir import RunDirectory

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create run directory {path}: {exc}") from None
    lock = (lock or RunLock(path)).acquire()
    try:
        return RunDirectory.create(path, problem, command, settings, **create), lock
    except BaseException:
        lock.release()
        raise


def _holder(fd: int) -> str:
    """' (pid 123 on host lab-3, since ...)' from the lock file, or '' if unreadable."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f" (pid {int(info['pid'])} on {info['host']}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def holder_gone(run_dir) -> bool:
    """True when the run directory's lock file names a process on this host that no
    longer exists: a run whose run.json still says "running" was then killed (kill -9,
    power loss) before it could say so. False when the holder lives, is on another host,
    or the lock file is missing or unreadable (nothing is known then)."""
    try:
        info = json.loads((Path(run_dir) / LOCK_NAME).read_text() or "{}")
        pid, host = int(info["pid"]), info["host"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by another user
        return False
    return False
