"""Cross-process window locks for exclusive attribution.

RAPL and NVML count a whole package or board, so two workers metering at once would each
be charged for the other's work. Under ``attribution = "exclusive"`` every metered window
holds an ``fcntl.flock`` on one file per package or GPU, so windows never overlap, except
that a window may nest inside another of the same thread (see :class:`FileLock`).

The lock files live in a directory only this user can write (:func:`default_lock_dir`,
checked by :func:`private_dir`) and are opened with ``O_NOFOLLOW``: another local user
cannot make gi-energy create files where a planted link points, nor hold its locks.
Windows therefore exclude each other among one user's runs, not across users.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
import threading
from pathlib import Path

from gi_energy.errors import MeterError


class WindowLock:
    """Held for the whole of a window; acquire blocks until no other window is open."""

    def acquire(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def release(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


class NullLock(WindowLock):
    """No lock: for per-process meters (the estimate) and cpu-share attribution."""

    def acquire(self) -> None:
        pass

    def release(self) -> None:
        pass

    def describe(self) -> str:
        return "no lock"


def default_lock_dir(environ=os.environ) -> Path:
    """Where this user's lock files go (shared by all of the user's runs): under
    ``$XDG_RUNTIME_DIR`` when that is a private directory of this user (absolute, owned by
    the user, mode 0700, as systemd makes /run/user/<uid>), else
    ``<tempdir>/gi-energy-locks-<uid>``. Only a name: :func:`private_dir` creates and checks it."""
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime):
        try:
            st = os.lstat(runtime)
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077:
            return Path(runtime) / "gi-energy-locks"
    return Path(tempfile.gettempdir()) / f"gi-energy-locks-{os.getuid()}"


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this user can write: created 0700 where missing, else
    checked to be a real directory (not a symbolic link), owned by this user and not
    writable by group or others. MeterError naming it and what to do otherwise."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(path)
    except OSError as exc:
        raise MeterError(f"cannot create the meter lock directory {path}: {exc}") from exc
    uid = os.getuid()
    if stat.S_ISLNK(st.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISDIR(st.st_mode):
        problem = "is not a directory"
    elif st.st_uid != uid:
        problem = f"is owned by uid {st.st_uid}, not by this user (uid {uid})"
    elif st.st_mode & 0o022:
        problem = f"is writable by other users (mode {stat.S_IMODE(st.st_mode):o}; expected 700)"
    else:
        return path
    raise MeterError(f"refusing the meter lock directory {path}: it {problem}; someone else may have "
                     "made it: remove it (or set XDG_RUNTIME_DIR to a private directory)")


class _Holder:
    """This process's hold on one lock file: the thread whose window took it, how many of
    that thread's windows are open on it (nested ones included), and the descriptor the
    ``flock`` was taken on (a ``dup`` kept here, so closing a meter cannot drop a lock that
    a nested window still needs)."""

    __slots__ = ("thread", "count", "fd")

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.count = 1
        self.fd: int | None = None  # None while the flock is still being waited for


# The lock registry: this process's holds, by the lock file's (st_dev, st_ino), so two
# spellings of one path are one lock. Needed because flock belongs to the open file
# description: a second open+flock of a file this process already holds blocks forever.
_REGISTRY = threading.Lock()
_FREED = threading.Condition(_REGISTRY)  # a hold ended: a thread waiting its turn may take it
_HOLDERS: dict[tuple[int, int], _Holder] = {}


def _forget_holders() -> None:
    """In a forked child: the parent's holds are not the child's (it must wait for them
    like any other process), and the registry's lock may have been taken by a thread that
    does not exist here."""
    global _REGISTRY, _FREED
    _REGISTRY = threading.Lock()
    _FREED = threading.Condition(_REGISTRY)
    for holder in _HOLDERS.values():
        if holder.fd is not None:
            os.close(holder.fd)  # the parent's copy keeps its lock
    _HOLDERS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_holders)


class FileLock(WindowLock):
    """An exclusive ``flock`` on ``lock_dir / name``, reentrant within one thread.

    The file is opened once per process and kept open, so a window costs a few system
    calls. flock belongs to the open file description, which a forked child shares with
    its parent; the descriptor is therefore reopened when the process id changes, or a
    parent and child would both "hold" the same lock.

    Nesting: a window opened while the same thread already holds this lock file (through
    this or any other FileLock of the same file: the user's ``gi_energy.meter()`` inside
    gi-energy's training window) re-enters it: a count goes up, no second flock is taken,
    and the file stays locked until the last of the thread's windows on it is released.
    That is honest: the outer window already keeps every other process out, and each
    window's reading is still its own interval's.

    Another thread of this process asking while one thread holds (or waits for) the lock
    waits its turn, as another process does: its window would not be nested but concurrent,
    charging each window with the other's energy, which exclusive attribution promises
    never happens; so two threads that each time their own work take turns, as they did
    when each window took its own flock. (A holder that waits for the thread it keeps
    waiting, a train() that joins a thread opening its own window, waits forever, as it
    always did; the evaluation's timeout ends it.)

    Taking a second lock file inside a window (an ``nvml`` window inside a ``rapl`` one)
    waits for it while holding the first; that is deadlock-free only while every process
    takes them in one order (the combined meter takes RAPL before NVML).
    """

    def __init__(self, lock_dir: Path, name: str) -> None:
        self.path = Path(lock_dir) / name
        self._fd: int | None = None
        self._pid: int | None = None
        self._key: tuple[int, int] | None = None
        self._holds: list[tuple[int, int]] = []  # the keys this object's acquires took, in order

    def _descriptor(self) -> int:
        pid = os.getpid()
        if self._fd is None or self._pid != pid:
            private_dir(self.path.parent)
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
            try:
                fd = os.open(self.path, flags, 0o600)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise MeterError(f"refusing the meter lock {self.path}: it is a symbolic link, which "
                                     "gi-energy does not follow; remove it") from exc
                raise MeterError(f"cannot open meter lock {self.path}: {exc}") from exc
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                raise MeterError(f"refusing the meter lock {self.path}: not a regular file; remove it")
            self._fd = fd
            self._pid = pid
            self._key = (st.st_dev, st.st_ino)
        return self._fd

    def acquire(self) -> None:
        fd = self._descriptor()
        key = self._key
        me = threading.get_ident()
        with _FREED:
            while (holder := _HOLDERS.get(key)) is not None and holder.thread != me:
                _FREED.wait()  # another thread of this process holds it: its turn first
            if holder is not None:
                holder.count += 1
                self._holds.append(key)
                return
            holder = _HOLDERS[key] = _Holder()
        # Waited for outside the registry, so other locks and the refusal above stay quick.
        try:
            held = os.dup(fd)
            try:
                fcntl.flock(held, fcntl.LOCK_EX)
            except BaseException:
                os.close(held)
                raise
        except BaseException:
            with _FREED:
                del _HOLDERS[key]
                _FREED.notify_all()
            raise
        holder.fd = held
        self._holds.append(key)

    def release(self) -> None:
        """Undo this object's latest acquire; the file is unlocked when this process's last
        window on it is released. A no-op without one (and in a forked child, which holds
        none of its parent's locks)."""
        if not self._holds:
            return
        key = self._holds.pop()
        if self._pid != os.getpid():
            return
        with _FREED:
            holder = _HOLDERS.get(key)
            if holder is None or holder.fd is None:
                return
            holder.count -= 1
            if holder.count > 0:
                return
            del _HOLDERS[key]
            # A thread that wakes now may reach its flock before ours is undone below: it
            # then waits there the moment it takes to undo it.
            _FREED.notify_all()
        try:
            fcntl.flock(holder.fd, fcntl.LOCK_UN)
        finally:
            os.close(holder.fd)

    def close(self) -> None:
        """Close the file, releasing what this object still holds (as closing the one
        descriptor did when each object took its own flock)."""
        while self._holds:
            self.release()
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def describe(self) -> str:
        return f"exclusive windows (lock {self.path})"
