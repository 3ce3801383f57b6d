"""Importing a user's ``.py`` file named in a problem file (``[task] entry = "file.py:Name"``,
``[dataset] loader = "file.py:load"``).

The module is registered under a name made from the file's path, once per process, so
every worker that imports it by path gets the same module, and classes defined there can
be found by name (pickle looks them up in ``sys.modules``). An import that fails is one
ProblemError naming the file and the key, and leaves nothing half-registered behind.
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
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file raised while importing
        del sys.modules[name]
        raise ProblemError(source, key, f"importing {str(path)!r} raised {type(exc).__name__}: {exc}") from None
    return module
