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
state (mtime, size, digest of the bytes: :mod:`.sources`) of its file and of the helpers
beside it that it imports (read from the files: :func:`helpers_beside`), its *sources*,
and which code an import gives is then decided by who asks:

* with no ``pinned`` sources (``bind``, at the start of a run, and any direct call): the
  code on disk. A module whose sources changed since is imported afresh with its helpers,
  so a notebook that edits the task and runs again runs the edit, which is also what the
  problem's fingerprint (the bytes on disk) names.
* with ``pinned`` sources (a worker evaluating for a run, which pinned them when it
  started): that code, so a run's results stay those of the code its store key names
  when the file is edited mid-run (for the next experiment). A process that has that
  code loaded goes on with it; one that would have to import it and finds the file
  changed raises :class:`~.sources.SourceChanged`, never running the edit under the
  run's key.

A helper the file imports by name must be the one beside it: where that name is taken
already (another task's helper of the same name, imported first in this process, or an
installed module) the import is refused, naming both files, rather than run code the
problem does not name.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from gi_energy.errors import ProblemError

from .sources import FileState, SourceChanged, file_state, same_versions, still_all, unchanged

# The module attribute holding its sources: the FileStates of its file and of each helper.
_SOURCES = "__gi_energy_sources__"


def import_file(path: Path, prefix: str, source: str, key: str,
                pinned: tuple[FileState, ...] | None = None) -> ModuleType:
    """The module of ``path``, imported as ``<prefix>_<digest of the path>``: the code on
    disk, or with ``pinned`` sources that code (see the module docstring)."""
    name = f"{prefix}_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    module = sys.modules.get(name)
    if module is not None:
        kept = module_sources(module)
        if same_versions(kept, pinned) if pinned is not None else all(map(unchanged, kept)):
            return module
        _forget(kept[1:])  # another version wanted: its helpers afresh with it
        del sys.modules[name]
    still_all(pinned, "the task's file", "the task's helper")
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
        helpers = _check_helpers(Path(path), source, key)
        sources = tuple(s for s in map(file_state, [path, *helpers.values()]) if s is not None)
        if pinned is not None and not same_versions(sources, pinned):  # edited while importing
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
    """The sources of a module :func:`import_file` gave: its file's state first, then each
    helper's (what a run pins)."""
    return getattr(module, _SOURCES, ())


def source_digests(path: Path, sources: tuple[FileState, ...]) -> dict[str, str]:
    """{module name: digest} of the helpers among ``sources`` (the FileStates of ``path``
    and its helpers), by the names ``path`` imports them as."""
    folder = Path(path).parent
    return {_module_name(folder, Path(state[0])): state[3] for state in sources if state[0] != str(path)}


def dataset_files(dataset) -> list[Path]:
    """The files a dataset is read from: its file (a CSV, an .npz, a loader's .py) and,
    for a loader, the helpers beside it that it imports; none without a file."""
    if dataset.path is None:
        return []
    path = Path(dataset.path)
    return [path, *(helpers_beside(path).values() if dataset.source == "loader" else ())]


def dataset_sources(dataset) -> tuple[FileState, ...] | None:
    """The FileStates of :func:`dataset_files` (what a run pins); None without a file."""
    states = tuple(s for s in map(file_state, dataset_files(dataset)) if s is not None)
    return states or None


def helpers_beside(path: Path) -> dict[str, Path]:
    """{module name: file} of the helpers ``path`` imports from its own folder, and theirs
    in turn: every ``import name`` / ``from name import ...`` (anywhere in the file, also
    inside a function) where ``name.py`` lies beside it, or the package ``name/`` (then
    every .py file in it, as ``name.sub``). Read from the files, so it is the same in every
    process whatever it imported before."""
    folder, out, todo = path.parent, {}, [path]
    while todo:
        for name in sorted(_imported_names(todo.pop())):
            if name in out:
                continue
            found = _beside(folder, name)
            for module, file in found.items():
                if file != path:
                    out[module] = file
                    todo.append(file)
    return dict(sorted(out.items()))


def _beside(folder: Path, name: str) -> dict[str, Path]:
    """{module name: file} that ``import name`` finds in ``folder``: a module, or a package
    with each of its files (a submodule imported later is part of the helper too)."""
    if (folder / f"{name}.py").is_file():
        return {name: folder / f"{name}.py"}
    package = folder / name
    if not (package / "__init__.py").is_file():
        return {}
    files = sorted(f for f in package.rglob("*.py") if "__pycache__" not in f.parts)
    return {_module_name(folder, f): f for f in files}


def _module_name(folder: Path, file: Path) -> str:
    """The name ``file`` is imported as with ``folder`` on sys.path: ``name``, or
    ``pkg.sub`` (``pkg`` for a package's ``__init__.py``)."""
    return ".".join(file.relative_to(folder).with_suffix("").parts).removesuffix(".__init__")


def _forget(helpers: tuple[FileState, ...]) -> None:
    """Drop the modules of these helper files from ``sys.modules`` (only the module of that
    very file: a name another file holds now is left alone, and so is ``__main__``)."""
    files = {os.path.abspath(state[0]) for state in helpers}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and not name.startswith("__") and os.path.abspath(file) in files:
            del sys.modules[name]


def _check_helpers(path: Path, source: str, key: str) -> dict[str, Path]:
    """:func:`helpers_beside` of ``path``; refused where one of them would be imported from
    elsewhere (its name taken by a module imported first, or earlier on sys.path)."""
    helpers = helpers_beside(path)
    for name, beside in helpers.items():
        if "." in name:
            continue  # a package's submodule: the package itself is checked
        module = sys.modules.get(name)
        found = getattr(module, "__file__", None) if module is not None else _found(name)
        if found is not None and os.path.abspath(found) != os.path.abspath(beside):
            raise ProblemError(source, key, f"{str(path)!r} imports {name}, and this process would give it "
                               f"{found!r}, not the {name}.py beside it (the name is taken: another task's "
                               "helper imported first in this process, or an installed module); rename the "
                               "helper, or run the problems in separate processes")
    return helpers


def _found(name: str) -> str | None:
    """The file ``import name`` would load now (None: none, or none can be told)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return None if spec is None else spec.origin


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
