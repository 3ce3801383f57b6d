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

One process may import a file again after it was edited (a notebook that edits the task
and runs it again; a worker kept for the next run): the problem's fingerprint is taken
from the bytes on disk, so the code that runs must be those bytes too. The module keeps
the stat (mtime, size) of its file and of the helpers beside it that it imported; when
one has changed, the module and those helpers are imported afresh. A helper the file
imports by name must be the one beside it: where that name is taken already (another
task's helper of the same name, imported first in this process, or an installed module)
the import is refused, naming both files, rather than run code the problem does not name.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from gi_energy.errors import ProblemError

# The module attribute holding {file: (mtime_ns, size)} of the file and its helpers.
_STATS = "__gi_energy_stats__"


def import_file(path: Path, prefix: str, source: str, key: str) -> ModuleType:
    """The module of ``path``, imported as ``<prefix>_<digest of the path>`` (afresh when
    the file or a helper beside it it imported was edited since)."""
    name = f"{prefix}_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    module = sys.modules.get(name)
    if module is not None:
        stats = getattr(module, _STATS, None)
        if stats is None or all(_stat(f) == s for f, s in stats.items()):
            return module
        for helper in helper_modules(Path(path).parent):  # edited since: every part afresh
            del sys.modules[helper]
        del sys.modules[name]
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
    except ProblemError:
        del sys.modules[name]
        if added and folder in sys.path:
            sys.path.remove(folder)
        raise
    files = [str(path), *(sys.modules[m].__file__ for m in helper_modules(Path(path).parent))]
    setattr(module, _STATS, {f: _stat(f) for f in files})
    return module


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


def _stat(file: str) -> tuple[int, int] | None:
    try:
        st = os.stat(file)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def raised(exc: BaseException) -> str:
    """``KeyError: 'label'``, or ``SystemExit(3)`` for a ``sys.exit(3)``, whose message
    alone would be a bare number."""
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"
