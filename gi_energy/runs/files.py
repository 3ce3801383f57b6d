"""Files that are never half-written, and the names and times they carry: atomic text
and JSON writes (a temporary name, fsync, ``os.replace``), timestamped run folders and
the ISO timestamps of run.json."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

# json.dumps(x, separators=(",", ":")) with one encoder made once: dumps builds a new
# encoder per call whenever an argument is not the default (the journal's lines, the
# checkpoint's outcome lines).
compact_json = json.JSONEncoder(separators=(",", ":")).encode


def timestamped_dir(root: Path, prefix: str) -> Path:
    """``root/<prefix>-<YYYYmmdd-HHMMSS>`` (local time); a numeric suffix when that name is
    taken (two runs started in the same second must not share a directory)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{prefix}-{stamp}"
    path, n = base, 2
    while path.exists():
        path = base.with_name(f"{base.name}-{n}")
        n += 1
    return path


def default_run_dir(problem, command: str, root: Path) -> Path:
    """``root/<problem.name>-<command>-<YYYYmmdd-HHMMSS>``, suffixed as :func:`timestamped_dir`."""
    return timestamped_dir(root, f"{problem.name}-{command}")


def now_iso() -> str:
    """The current UTC time to the second, ISO 8601 (the timestamps of run.json)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: Path, newline: str | None = None, *, binary: bool = False, durable: bool = True) -> Iterator:
    """A text file (with ``binary``, a bytes file: images) opened under a temporary name in
    the same folder, moved into place only when the block finishes without an error.
    ``durable=False`` leaves out the fsync: the move is still atomic against a killed
    process, not against a power loss (a replay, whose every write can be redone free)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600; results are for sharing, so give it the mode an
        # ordinary open() would (0666 less the umask).
        os.fchmod(fd, 0o666 & ~_umask())
        text = {} if binary else {"encoding": "utf-8", "newline": newline}
        with os.fdopen(fd, "wb" if binary else "w", **text) as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path, obj, *, compact: bool = False, durable: bool = True) -> None:
    """Write ``obj`` as JSON via a temporary file and ``os.replace``, so a kill at any
    moment leaves the old file or the new one, never half of one. Indented, or with
    ``compact`` on one line without spaces (large machine-read files: checkpoints)."""
    layout = {"separators": (",", ":")} if compact else {"indent": 2}
    # dumps, then one write: json.dump encodes in Python chunk by chunk, dumps (compact)
    # in C, an order of magnitude faster on a checkpoint's history.
    text = json.dumps(obj, sort_keys=False, default=_json_default, **layout)
    with atomic_open(Path(path), durable=durable) as fh:
        fh.write(text)
        fh.write("\n")


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    return str(o)
