"""A run's identity: everything in a problem that decides what a search or a grid does.

Two identities, on purpose of different widths. :meth:`Problem.fingerprint` is the
*evaluation* identity, the store key: only what changes the result of training one genome
(data, model, evaluation seed, ...), so a grid and an evolve of one problem share their
stored results. The *run* identity here is wide: also the search space, the grid levels,
the objectives and their order, the constraints, the search settings that are not budgets,
the seed, repeats and the meter. ``--resume`` compares the run's recorded identity with the
problem it is handed and refuses any difference, naming the keys, so a run never changes
what it searches for half-way.

Left out, because a resume may change them without changing the search: the budgets
(generations, max_evaluations, max_wall_s, energy_budget_j), where and how the work runs
(workers, backend, scheduler, timeout_s -- a longer timeout is how timeouts are retried),
output paths, the name and description, the carbon intensity (a reporting factor) and
file paths (their content is in the fingerprint, and a path differs from another working
directory).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .problem import Problem

BUDGETS = ("generations", "max_evaluations", "max_wall_s", "energy_budget_j")
_LEFT_OUT = {
    "problem": {"name", "description", "source", "text", "output", "pinned"},
    "evaluation": {"workers", "backend", "scheduler", "timeout_s", "replay"},
    "search": set(BUDGETS),
    "energy": {"carbon_intensity_g_per_kwh"},
}
# Sections whose entries are named things (space structures and parameters, grid levels)
# are compared entry by entry, so a refusal names the entry.
_BY_ENTRY = {"space", "grid"}


def run_identity(problem: Problem, command: str) -> dict[str, Any]:
    """{"section.key": value} of what decides a ``command`` ("evolve" or "grid") run of
    ``problem``; values are plain JSON (a dict compares equal after a run.json round trip).

    A grid has no [search] settings and no search seed; an evolve does not read [grid].
    """
    skip = set(_LEFT_OUT["problem"]) | ({"search", "seed"} if command == "grid" else {"grid"})
    out: dict[str, Any] = {"fingerprint": problem.fingerprint()}
    for f in dataclasses.fields(problem):
        if f.name in skip:
            continue
        value = getattr(problem, f.name)
        if f.name == "objectives":  # their order matters: the first ranks front.csv
            out["objectives"] = [[k, v] for k, v in value.items()]
        elif dataclasses.is_dataclass(value):
            for g in dataclasses.fields(value):
                if g.name in _LEFT_OUT.get(f.name, ()):
                    continue
                sub = getattr(value, g.name)
                if f.name in _BY_ENTRY and isinstance(sub, Mapping):
                    for name, entry in sub.items():
                        out[f"{f.name}.{name}"] = _plain(entry)
                elif not isinstance(sub, Path):
                    out[f"{f.name}.{g.name}"] = _plain(sub)
        else:
            out[f.name] = _plain(value)
    return json.loads(json.dumps(out, sort_keys=True))


def identity_differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The keys whose values differ (or that only one side has), sorted."""
    return sorted(k for k in set(recorded) | set(current) if recorded.get(k, _ABSENT) != current.get(k, _ABSENT))


def describe_keys(keys: list[str]) -> str:
    """"[space] width, [objectives]" from "space.width", "objectives"."""
    parts = []
    for k in keys:
        section, _, rest = k.partition(".")
        parts.append(f"[{section}] {rest}" if rest else f"[{section}]" if k != "fingerprint"
                     else "the evaluation fingerprint (data, model or evaluation settings)")
    return ", ".join(parts)


_ABSENT = object()


def _plain(value):
    """A JSON value for a config value: dataclasses and mappings as objects, sequences
    as lists, paths left out, non-finite floats as strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not isinstance(getattr(value, f.name), Path)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
