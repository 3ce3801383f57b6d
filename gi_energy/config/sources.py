"""The state of the files a problem's results come from (a user's task file and the
helpers beside it, a dataset's file), as a run pins them when it starts.

A :data:`FileState` is (path, mtime_ns, size, digest of the bytes). The digest is what
the problem's fingerprint and store key name; the stat only spares re-reading a file that
did not change. A run records its :class:`Pins` (``tasks.loader.bind``), and a process
evaluating for it asks :func:`still` of each before it imports or loads a file afresh:
the run's version, or :class:`SourceChanged` (see :mod:`gi_energy.config.userfile`)."""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass

# (path, mtime_ns, size, sha256 of the bytes, 16 hex digits)
FileState = tuple[str, int, int, str]


@dataclass(frozen=True)
class Pins:
    """The source files a run pinned when it started: the task file with its helpers,
    and the dataset's file (a CSV, an .npz, a loader's .py, with the loader's helpers);
    None where there is none, or the task is imported by module name (Python's own import
    rules hold there). Each tuple lists the file first, then its helpers."""

    task: tuple[FileState, ...] | None = None
    dataset: tuple[FileState, ...] | None = None


class SourceChanged(RuntimeError):
    """A run's pinned source file changed on disk, and this process has not that version
    loaded: it cannot evaluate for that run."""


def file_state(file) -> FileState | None:
    """``file``'s FileState now; None when it cannot be read."""
    try:
        st = os.stat(file)
    except OSError:
        return None
    digest = digest_of(str(file), st.st_mtime_ns, st.st_size)
    return None if digest == str(file) else (str(file), st.st_mtime_ns, st.st_size, digest)


def file_digest(file) -> str:
    """The digest of ``file``'s bytes now, or its path where it cannot be read (what the
    problem's fingerprint names a file by)."""
    state = file_state(file)
    return str(file) if state is None else state[3]


@functools.lru_cache(maxsize=64)
def digest_of(path: str, mtime_ns: int, size: int) -> str:
    """sha256 of a file's bytes (16 hex digits), or the path itself when it cannot be
    read; memoised on its stat, so an edited file is hashed anew (the problem's
    fingerprint and a run's pins each ask for a data file's digest)."""
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()[:16]
    except OSError:
        return path


def unchanged(state: FileState) -> bool:
    """Does the file hold what ``state`` recorded? (Its stat alone says so when unchanged;
    a file touched but not edited reads the same bytes.)"""
    path, mtime_ns, size, digest = state
    try:
        st = os.stat(path)
    except OSError:
        return False
    if (st.st_mtime_ns, st.st_size) == (mtime_ns, size):
        return True
    now = file_state(path)
    return now is not None and now[3] == digest


def still(state: FileState | None, what: str) -> None:
    """Raise :class:`SourceChanged` unless the file of a run's pinned ``state`` is unchanged."""
    if state is not None and not unchanged(state):
        raise SourceChanged(f"{what} {state[0]!r} changed since the run started, and this process has not "
                            "loaded the version the run's results are of: put the file back as it was to go "
                            "on (resume the run), or start a new run to use the edited file")


def still_all(states: tuple[FileState, ...] | None, file_word: str, helper_word: str) -> None:
    """:func:`still` of each of a run's pinned ``states`` of one thing (its file first,
    then its helpers, named so in the message)."""
    for i, state in enumerate(states or ()):
        still(state, helper_word if i else file_word)


def same_versions(a, b) -> bool:
    """Do two sets of FileStates name the same files with the same bytes?"""
    return {s[0]: s[3] for s in a} == {s[0]: s[3] for s in b}
