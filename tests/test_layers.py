"""The package reads as the flow: each stage imports only from the stages below it, and
no modules import each other in a circle (lazy imports inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Source folders and the package each installs as (setup.cfg package_dir).
SOURCES = {"gi_energy": "gi_energy", "operators": "gi_energy.operators", "problems": "gi_energy.problems"}
# Lowest first. A module may import its own stage and any stage below it.
STAGES = [
    {"gi_energy.errors"},
    {"gi_energy.config"},
    {"gi_energy.meters", "gi_energy.problems", "gi_energy.operators"},
    {"gi_energy.tasks"},
    {"gi_energy.evaluation"},
    {"gi_energy.pareto"},
    {"gi_energy.runs"},
    {"gi_energy.report"},
    {"gi_energy.search"},
    {"gi_energy.cli", "gi_energy"},
]


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in SOURCES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _stage(module: str) -> int:
    best = None
    for rank, names in enumerate(STAGES):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > best[1]):
                best = (rank, len(name))
    assert best is not None, f"{module} belongs to no stage"
    return best[0]


def _imports(module: str, path: Path) -> set[str]:
    """The project modules ``module`` imports, wherever in the file the import is."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from pkg import mod` imports the module pkg.mod when there is one.
            names = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def test_the_stages_cover_every_module():
    for module in MODULES:
        _stage(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_reaches_up_a_stage(module):
    up = sorted(t for t in GRAPH[module] if _stage(t) > _stage(module)
                and not (module == "gi_energy" or t == "gi_energy"))
    assert up == [], f"{module} (stage {_stage(module)}) imports from above it: {up}"


def test_no_import_circles():
    # Package __init__ files are left out: importing gi_energy.x.y runs gi_energy/__init__.py
    # by Python's rules, which is not a dependency of the code.
    graph = {m: {t for t in ts if t != "gi_energy"} for m, ts in GRAPH.items() if m != "gi_energy"}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_checker_sees_a_lazy_reach_upward(tmp_path):
    """The checker itself: an import from a higher stage inside a function is found, and
    ``from package import module`` counts as importing the module."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from gi_energy.search import nsga2\n")
    found = _imports("gi_energy.probe", probe)
    assert found == {"gi_energy.search.nsga2"}
    assert _stage("gi_energy.search.nsga2") > _stage("gi_energy.pareto")
