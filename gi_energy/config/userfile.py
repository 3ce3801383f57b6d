"""Importing a user's ``.py`` file named in a problem file (``[task] entry = "file.py:Name"``,
``[dataset] loader = "file.py:load"``).

The module is registered under a name made from the file's path, once per process, so
every worker that imports it by path gets the same module, and classes defined there can
be found by name (pickle looks them up in ``sys.modules``). The file's folder is appended
to ``sys.path`` first, in the parent and in every worker alike (each imports the file
through here), so the file can import helper modules beside it as it could when run as a
script; appended, not put first, so that a helper cannot shadow a module gi-energy or an
installed package imports. An import that fails (``sys.exit()`` at module level included)
is one ProblemError naming the problem file and the key, and leaves nothing registered
behind: neither the module nor the folder.

A file can be edited while a process that imported it goes on. The module keeps the
state (mtime, size, digest of the bytes) of its file and of the helpers beside it that it
imported, its *sources*, and which code an import gives is then decided by who asks:

* with no ``pinned`` sources (``bind``, at the start of a run, and any direct call): the
  code on disk. A module whose sources changed since is imported afresh with its helpers,
  so a notebook that edits the task and runs again runs the edit, which is also what the
  problem's fingerprint (the bytes on disk) names.
* with ``pinned`` sources (a worker evaluating for a run, which pinned them when it
  started): that code, so a run's results stay those of the code its store key names
  when the file is edited mid-run (for the next experiment). A process that has that
  code loaded goes on with it; one that would have to import it and finds the file
  changed raises :class:`SourceChanged` (a crashed evaluation, retried), never running
  the edit under the run's key.

A helper the file imports by name must be the one beside it: where that name is taken
already (another task's helper of the same name, imported first in this process, or an
installed module) the import is refused, naming both files, rather than run code the
problem does not name.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from gi_energy.errors import ProblemError

# The module attribute holding its sources: a FileState of its file and of each helper.
_SOURCES = "__gi_energy_sources__"

# (path, mtime_ns, size, sha256 of the bytes, 16 hex digits)
FileState = tuple[str, int, int, str]


@dataclass(frozen=True)
class Pins:
    """The source files a run pinned when it started (``bind``): the task file with its
    helpers, and the dataset's file (a CSV, an .npz, a loader's .py); None where there is
    none, or the task is imported by module name (Python's own import rules hold there)."""

    task: tuple[FileState, ...] | None = None
    dataset: FileState | None = None


class SourceChanged(RuntimeError):
    """A run's pinned source file changed on disk, and this process has not its code (or
    data) loaded: it cannot evaluate for that run (see the module docstring)."""


def import_file(path: Path, prefix: str, source: str, key: str,
                pinned: tuple[FileState, ...] | None = None) -> ModuleType:
    """The module of ``path``, imported as ``<prefix>_<digest of the path>``: the code on
    disk, or with ``pinned`` sources that code (see the module docstring)."""
    name = f"{prefix}_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    module = sys.modules.get(name)
    if module is not None:
        kept = getattr(module, _SOURCES, ())
        if (_digests(kept) == _digests(pinned)) if pinned is not None else all(map(unchanged, kept)):
            return module
        for helper in helper_modules(Path(path).parent):  # another version wanted: every part afresh
            sys.modules.pop(helper, None)
        del sys.modules[name]
    if pinned is not None:
        _still(pinned)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ProblemError(source, key, f"{str(path)!r} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    folder = str(Path(path).parent)
    added = folder not in sys.path
    if added:
        sys.path.append(folder)
    sys.modules[name] = module
    try:
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's file raised (or exited) while importing
            _check_helpers(Path(path), source, key)  # a helper taken by another file is the cause to name
            raise ProblemError(source, key, f"importing {str(path)!r} raised {raised(exc)}") from None
        _check_helpers(Path(path), source, key)
        files = [str(path), *(sys.modules[m].__file__ for m in helper_modules(Path(path).parent))]
        sources = tuple(s for s in map(file_state, files) if s is not None)
        if pinned is not None and _digests(sources) != _digests(pinned):  # edited while importing
            raise SourceChanged(f"{str(path)!r} or a helper beside it changed since the run started; "
                                "the run's results are those of the code it started with")
    except (ProblemError, SourceChanged):
        del sys.modules[name]
        if added and folder in sys.path:
            sys.path.remove(folder)
        raise
    setattr(module, _SOURCES, sources)
    return module


def module_sources(module: ModuleType) -> tuple[FileState, ...]:
    """The sources of a module :func:`import_file` gave (what a run pins)."""
    return getattr(module, _SOURCES, ())


def file_state(file) -> FileState | None:
    """``file``'s FileState now; None when it cannot be read."""
    try:
        st = os.stat(file)
    except OSError:
        return None
    digest = digest_of(str(file), st.st_mtime_ns, st.st_size)
    return None if digest == str(file) else (str(file), st.st_mtime_ns, st.st_size, digest)


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
        raise SourceChanged(f"{what} {state[0]!r} changed since the run started; the run's results are "
                            "those of the file it started with, which this process has not loaded "
                            "(start a new run to use the edited file)")


def _still(pinned: tuple[FileState, ...]) -> None:
    for state in pinned:
        still(state, "the task's file" if state is pinned[0] else "the task's helper")


def _digests(sources) -> dict[str, str] | None:
    return None if sources is None else {s[0]: s[3] for s in sources}


def helper_modules(folder: Path) -> list[str]:
    """The names of the top-level modules in ``sys.modules`` imported from a ``.py`` file
    directly in ``folder`` (a user file's helpers, as its folder on sys.path gives them;
    not the user files gi-energy registered itself)."""
    where = os.path.abspath(folder)
    out = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if (file and "." not in name and not name.startswith("gi_energy_") and file.endswith(".py")
                and os.path.dirname(os.path.abspath(file)) == where):
            out.append(name)
    return out


def _check_helpers(path: Path, source: str, key: str) -> None:
    """Refuse a helper beside ``path`` that ``path`` imports by name but that comes from
    elsewhere (its name taken by a module imported first, or earlier on sys.path)."""
    folder = path.parent
    for name in sorted(_imported_names(path)):
        beside = folder / f"{name}.py"
        if not beside.is_file():
            continue
        module = sys.modules.get(name)
        if module is not None:
            found = getattr(module, "__file__", None)
        else:
            with contextlib.suppress(ImportError, ValueError):
                spec = importlib.util.find_spec(name)
                found = None if spec is None else spec.origin
        if found is not None and os.path.abspath(found) != os.path.abspath(beside):
            raise ProblemError(source, key, f"{str(path)!r} imports {name}, and this process would give it "
                               f"{found!r}, not the {name}.py beside it (the name is taken: another task's "
                               "helper imported first in this process, or an installed module); rename the "
                               "helper, or run the problems in separate processes")


def _imported_names(path: Path) -> set[str]:
    """The top-level module names ``path`` imports absolutely, anywhere in the file."""
    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def raised(exc: BaseException) -> str:
    """``KeyError: 'label'``, or ``SystemExit(3)`` for a ``sys.exit(3)``, whose message
    alone would be a bare number."""
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"
