"""The sections of a problem whose task is the user's own: ``[task]``, a ``[space]`` of any
hyperparameter names and layer structures, and objectives or constraints named as the task
names its metrics.

Whether the task really exists and returns those metrics is checked when it is loaded
(:func:`gi_energy.tasks.loader.bind`, run by ``validate``, ``evolve`` and ``grid`` before
any work starts): this stage only reads the file.
"""

from __future__ import annotations

import re
from pathlib import Path

from gi_energy.errors import ProblemError, did_you_mean

from .checks import Table, check_value, type_name
from .params import read_param, read_range
from .problem import HYPERPARAMETERS, OBJECTIVE_NAMES, TaskConfig
from .space import Choice, Fixed, IntRange, LayerSpace, SearchSpace

# module.path:Name, or some/file.py:Name
_MODULE_ENTRY = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
_FILE_ENTRY = re.compile(r"^(?P<file>.+\.py):(?P<name>[A-Za-z_][\w]*)$")
_METRIC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What gi-energy itself measures around every task; a task cannot report these.
MEASURED_METRICS = ("train_energy_j", "inference_energy_j_per_1k", "train_time_s", "inference_time_s_per_1k")
LAYER_COUNT_BOUNDS = (0, 1024)


def read_task(t: Table, base_dir: Path | None) -> TaskConfig:
    """``[task] entry = "package.module:Name"`` or ``"file.py:Name"``; ``options`` a table
    of keyword arguments for the task's constructor."""
    entry = t.get("entry", str, required=True)
    options = t.raw("options", {})
    if not isinstance(options, dict):
        raise t.error("options", f"expected a table of keyword arguments, got {type_name(options)}")
    t.finish({"entry", "options"})
    opts = tuple(sorted((str(k), _frozen(v)) for k, v in options.items()))
    module, file, name = read_entry(t, "entry", entry, base_dir)
    return TaskConfig(entry=entry, module=module, file=file, name=name, options=opts)


def read_entry(t: Table, key: str, entry: str, base_dir: Path | None) -> tuple[str | None, Path | None, str]:
    """(module, file, attribute) of ``"package.module:Name"`` or ``"file.py:Name"`` (the
    file relative to the problem file, and required to exist)."""
    m = _FILE_ENTRY.match(entry)
    if m:
        path = Path(m["file"]).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise t.error(key, f"no such file {str(path)!r} (a path is relative to the problem file)")
        return None, path.resolve(), m["name"]
    if not _MODULE_ENTRY.match(entry):
        raise t.error(key, f'expected "package.module:Name" or "file.py:Name", got {entry!r}')
    module, name = entry.split(":")
    if module in ("__main__", "__mp_main__"):
        # Workers import the entry by name, and a worker's __main__ is not the parent's script.
        raise t.error(key, f"{entry!r}: worker processes cannot import the running script's __main__; "
                      f'put {name} in a file of its own and name it "file.py:{name}"')
    return module, None, name


def _frozen(value):
    """Options as hashable values: lists become tuples, tables sorted pairs."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    return value


def read_space(t: Table) -> SearchSpace:
    """Any names: ``{ min, max, log, default }`` (integers or reals), a list of choices, a
    single value (held fixed), or a layer structure ``{ layers = <count>, size = <size> }``
    whose count and per-layer size are each an integer or an integer range. A built-in
    hyperparameter name keeps its bounds and choices."""
    layers, params = {}, {}
    for name, value in t.data.items():
        t.used.add(name)
        if isinstance(value, dict) and "layers" in value:
            if not _METRIC_NAME.match(name):
                # its per-layer values are tracks named "<structure>.<value>"
                raise t.error(name, "expected a layer structure name of letters, digits and underscores")
            layers[name] = _read_structure(t.table(name))
        elif name in HYPERPARAMETERS:
            params[name] = read_param(t, name)
        else:
            params[name] = _read_free_param(t, name, value)
    if not layers and not params:
        raise ProblemError(t.source, "space", "a task of your own needs its parameters here, e.g. "
                           "learning_rate = { min = 1e-4, max = 1e-1, log = true }")
    return SearchSpace(layers=layers, params=params)


def _read_structure(t: Table) -> LayerSpace:
    """``{ layers = <count>, size = <size>, <value> = ... }``: any further key is a value
    each layer carries, an integer range or a list of choices (integers or strings)."""
    count = _int_range(t, "layers", *LAYER_COUNT_BOUNDS, required=True)
    size = _int_range(t, "size", 1, 1 << 20, required=True)
    per_layer = []
    for name in sorted(k for k in t.data if k not in ("layers", "size")):
        if not _METRIC_NAME.match(name):
            raise t.error(name, "expected a per-layer value name of letters, digits and underscores")
        per_layer.append((name, _per_layer_value(t, name)))
    t.finish({"layers", "size", *(n for n, _ in per_layer)})
    return LayerSpace(count=count, size=size, per_layer=tuple(per_layer))


def _per_layer_value(t: Table, name: str) -> IntRange | Choice:
    value = t.raw(name)
    if isinstance(value, dict):
        return read_range(t, name, int, None, None)
    if isinstance(value, list) and value:
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        names = all(isinstance(v, str) and v and not set(v) & set("-|=,") for v in value)
        if not (ints or names):
            raise t.error(name, "expected per-layer choices that are all integers or all strings "
                          f"(without '-', '|', '=' or ','), got {value!r}")
        if len(set(value)) != len(value):
            raise t.error(name, f"expected distinct choices, got {value!r}")
        return Choice(tuple(value))
    raise t.error(name, "expected an integer range { min = ..., max = ... } or a non-empty list of choices "
                  f"for each layer, got {type_name(value)}")


def _int_range(t: Table, name: str, low: int, high: int, *, required: bool) -> IntRange:
    value = t.raw(name)
    if value is None and required:
        raise t.error(name, "is required (an integer or a table { min = ..., max = ... })")
    if isinstance(value, dict):
        return read_range(t, name, int, low, high)
    v = check_value(value, int, lambda m: t.error(name, m), low=low, high=high)
    return IntRange(v, v)


def _read_free_param(t: Table, name: str, value):
    err = lambda msg: t.error(name, msg)  # noqa: E731
    if isinstance(value, dict):
        bounds = [value.get("min"), value.get("max")]
        kind = int if all(isinstance(b, int) and not isinstance(b, bool) for b in bounds) else float
        return read_range(t, name, kind, None, None)
    if isinstance(value, list):
        if not value:
            raise err("expected a non-empty list of choices")
        if not all(isinstance(v, str | int | float | bool) for v in value):
            raise err(f"expected choices that are strings, numbers or booleans, got {value!r}")
        if len(set(value)) != len(value):
            raise err(f"expected distinct choices, got {value!r}")
        return Choice(tuple(value))
    if isinstance(value, str | int | float | bool):
        return Fixed(value)
    raise err(f"expected a range table, a list of choices or a single value, got {type_name(value)}")


def read_metric_objectives(t: Table, known: tuple[str, ...] | None = None) -> dict[str, str]:
    """Objectives by metric name: any name the task may return, or (``known``, the
    built-in task's metrics) one of those; built-in names keep their direction
    (accuracy "max", the rest "min")."""
    objectives = {}
    for name in t.data:
        direction = t.get(name, str, choices=("max", "min"))
        _check_known(t, name, known, "objective")
        if name in OBJECTIVE_NAMES and direction != ("max" if name == "accuracy" else "min"):
            raise t.error(name, f'{name} can only be "{"max" if name == "accuracy" else "min"}"')
        objectives[name] = direction
    if len(objectives) < 2:
        raise ProblemError(t.source, t.path, "expected at least two objectives, e.g. accuracy = \"max\" and "
                           "inference_energy_j_per_1k = \"min\"")
    return objectives


def read_metric_constraints(t: Table, known: tuple[str, ...] | None = None) -> dict[str, float]:
    """Upper limits on any metric name except accuracy (or, with ``known``, on those)."""
    out = {}
    for name in t.data:
        t.used.add(name)
        _check_known(t, name, known, "constraint")
        if name == "accuracy":
            raise t.error(name, "accuracy cannot be an upper-bounded constraint")
        sub = t.table(name)
        out[name] = sub.get("max", float, required=True, low=0.0, low_open=True)
        sub.finish({"max"})
    return out


def _check_known(t: Table, name: str, known: tuple[str, ...] | None, what: str) -> None:
    if known is not None and name not in known:
        raise t.error(name, f"unknown {what}" + did_you_mean(name, known) + f"; valid: {', '.join(known)}")
    if not _METRIC_NAME.match(name):
        raise t.error(name, "expected a metric name of letters, digits and underscores")
