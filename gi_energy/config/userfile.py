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
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from gi_energy.errors import ProblemError


def import_file(path: Path, prefix: str, source: str, key: str) -> ModuleType:
    """The module of ``path``, imported as ``<prefix>_<digest of the path>``."""
    name = f"{prefix}_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
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
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's file raised (or exited) while importing
        del sys.modules[name]
        if added and folder in sys.path:
            sys.path.remove(folder)
        raise ProblemError(source, key, f"importing {str(path)!r} raised {raised(exc)}") from None
    return module


def raised(exc: BaseException) -> str:
    """``KeyError: 'label'``, or ``SystemExit(3)`` for a ``sys.exit(3)``, whose message
    alone would be a bare number."""
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"
