"""Cross-process window locks for exclusive attribution.

RAPL and NVML count a whole package or board, so two workers metering at once would each
be charged for the other's work. Under ``attribution = "exclusive"`` every metered window
holds an ``fcntl.flock`` on one file per package or GPU, so windows never overlap.
"""

from __future__ import annotations

import fcntl
import os
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


def default_lock_dir() -> Path:
    """A per-user directory under the system temp dir (shared by all of a user's runs)."""
    return Path(tempfile.gettempdir()) / f"gi-energy-locks-{os.getuid()}"


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
            try:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise MeterError(f"cannot open meter lock {self.path}: {exc}") from exc
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
