"""Cross-process window locks for exclusive attribution.

RAPL and NVML count a whole package or board, so two workers metering at once would each
be charged for the other's work. Under ``attribution = "exclusive"`` every metered window
holds an ``fcntl.flock`` on one file per package or GPU, so windows never overlap.

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


class FileLock(WindowLock):
    """An exclusive ``flock`` on ``lock_dir / name``.

    The file is opened once per process and kept open, so a window costs two system
    calls. flock belongs to the open file description, which a forked child shares with
    its parent; the descriptor is therefore reopened when the process id changes, or a
    parent and child would both "hold" the same lock.
    """

    def __init__(self, lock_dir: Path, name: str) -> None:
        self.path = Path(lock_dir) / name
        self._fd: int | None = None
        self._pid: int | None = None

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
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise MeterError(f"refusing the meter lock {self.path}: not a regular file; remove it")
            self._fd = fd
            self._pid = pid
        return self._fd

    def acquire(self) -> None:
        fcntl.flock(self._descriptor(), fcntl.LOCK_EX)

    def release(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def describe(self) -> str:
        return f"exclusive windows (lock {self.path})"
