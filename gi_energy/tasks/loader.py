"""Finding the task a problem names: a built-in one (``[model] family``) or the user's own
(``[task] entry``), imported by name in whichever process evaluates it.

The problem carries only the entry string, never the user's objects, so a task reaches
loky and Dask workers by import, not by pickling. :func:`bind` loads it once in the
parent, before any work starts, so that a bad entry is bad input (exit 2, the key named)
rather than a failure in every worker, and records what the task declared (its version
and metric names) in the store key.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json

from gi_energy.config.custom import MEASURED_METRICS
from gi_energy.config.problem import OBJECTIVE_NAMES, Problem, TaskConfig
from gi_energy.config.sources import Pins
from gi_energy.config.space import layer_columns
from gi_energy.config.userfile import (
    dataset_sources,
    import_file,
    module_sources,
    raised,
    source_digests,
)
from gi_energy.errors import ProblemError, did_you_mean

from .base import Task
from .results import FILE_COLUMNS

# Metric names a task's evaluate() may return with a fixed meaning (Evaluation fields).
BUILTIN_RETURNED = ("accuracy", "test_accuracy", "params", "flops_per_sample")


def task_for(problem: Problem) -> Task:
    """The task instance that evaluates ``problem`` in this process (made once per process,
    task config and state of the task's file: a file edited since is imported afresh)."""
    return task_from(problem.task, problem.model.family, problem.source, problem.pinned.task)


def task_from(config: TaskConfig | None, family: str, source: str = "<python>",
              pinned: tuple | None = None) -> Task:
    """:func:`task_for` from the parts of a problem that name the task (hashable, so a
    worker can cache what the task prepares); ``pinned``: the task's sources a run pinned
    (:attr:`Pins.task <gi_energy.config.sources.Pins>`), None for the code on disk."""
    if config is None:
        return _builtin(family)
    return _user_task(config, source, pinned)


@functools.lru_cache(maxsize=4)
def _builtin(family: str) -> Task:
    from .builtin import BUILTIN_TASKS  # imports torch: only where an evaluation runs

    return BUILTIN_TASKS[family]()


def _user_task(config: TaskConfig, source: str, pinned) -> Task:
    # The class is asked for each time (free unless another version of the file is wanted:
    # then it is a new class, and so a new instance); the instance is made once per class.
    return _constructed(_import(config, source, pinned), config, source)


@functools.lru_cache(maxsize=8)
def _constructed(cls: type[Task], config: TaskConfig, source: str) -> Task:
    try:
        return cls(**dict(config.options))
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any error constructing user code is bad input
        raise ProblemError(source, "task.options", f"{config.entry}({_kwargs(config)}) raised "
                           f"{raised(exc)}") from None


def _kwargs(config: TaskConfig) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in config.options)


def _import(config: TaskConfig, source: str, pinned=None) -> type[Task]:
    if config.file is not None:
        module = _import_file(config, source, pinned)
    else:
        try:
            module = importlib.import_module(config.module)
        except ModuleNotFoundError as exc:
            raise ProblemError(source, "task.entry", f"no module {exc.name!r} (from {config.entry!r}; "
                               "is it installed or on PYTHONPATH?)") from None
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's module raised (or exited) while importing
            raise ProblemError(source, "task.entry", f"importing {config.module!r} raised "
                               f"{raised(exc)}") from None
    cls = getattr(module, config.name, None)
    if cls is None:
        names = [n for n in vars(module) if not n.startswith("_")]
        raise ProblemError(source, "task.entry", f"{config.entry!r}: the module has no {config.name!r}"
                           + did_you_mean(config.name, names))
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ProblemError(source, "task.entry", f"{config.entry!r} is not a task: expected a subclass of "
                           f"gi_energy.Task, got {_described(cls)}")
    return cls


def _described(obj) -> str:
    """What an entry names, in the user's words: a file's module is registered under a
    name of gi-energy's own (``gi_energy_task_<digest>``), which the user never wrote."""
    if isinstance(obj, type):
        bases = ", ".join(b.__name__ for b in obj.__bases__)
        return f"class {obj.__qualname__}({bases})"
    if hasattr(obj, "__qualname__"):  # a function
        return f"{type(obj).__name__} {obj.__qualname__}"
    if type(obj).__module__ == "builtins":
        return f"{type(obj).__name__} {obj!r}"
    return f"an instance of {type(obj).__qualname__}"


def _import_file(config: TaskConfig, source: str, pinned=None):
    """Import a task's .py file under a name made from its path (once per process and
    version of its sources: see :mod:`gi_energy.config.userfile`)."""
    return import_file(config.file, "gi_energy_task", source, "task.entry", pinned)


def declared_metrics(problem: Problem) -> tuple[str, ...]:
    """Every metric name an evaluation of ``problem`` can have."""
    if problem.task is None:
        return OBJECTIVE_NAMES + ("test_accuracy",)
    task = task_for(problem)
    return OBJECTIVE_NAMES + ("test_accuracy",) + tuple(task.metrics)


def bound(problem: Problem) -> Problem:
    """``problem`` as :func:`bind` gives it, unless it is bound already: then as it is,
    its pins kept (an evaluator made for a run that bound its problem at its start must
    evaluate the versions the run pinned, not files edited since)."""
    return problem if problem.pinned != Pins() else bind(problem)


def bind(problem: Problem) -> Problem:
    """``problem`` with its task loaded and checked: importable, a :class:`Task`,
    constructible with ``[task] options``, declaring the metrics that [objectives] and
    [constraints] name. Records the task's version and metric names in the store key.
    Pins the run's sources (:class:`~gi_energy.config.sources.Pins`): the code and data
    on disk now, which the fingerprint names, are what its workers evaluate. A built-in
    task needs nothing more than the pins."""
    data = dataset_sources(problem.dataset)
    if problem.pinned != Pins(dataset=data):  # the code on disk, not an earlier pin
        problem = dataclasses.replace(problem, pinned=Pins(dataset=data))
    if problem.task is None:
        return problem  # (the same object when there is nothing to pin)
    task = task_for(problem)
    declared = tuple(task.metrics)
    space = problem.space
    # the genome's own columns: each setting, each structure's count and sizes, each
    # per-layer value's track (as runs.tables writes them), and the layer keys themselves
    genome_names = {*space.params, *space.layer_keys(), *(c for k in space.layer_keys() for c in layer_columns(k))}
    for m in declared:
        if not isinstance(m, str) or not m.isidentifier():
            raise ProblemError(problem.source, "task.entry", f"{problem.task.entry}.metrics: expected names "
                               f"of letters, digits and underscores, got {m!r}")
        if m in MEASURED_METRICS or m in OBJECTIVE_NAMES or m == "test_accuracy":
            raise ProblemError(problem.source, "task.entry", f"{problem.task.entry}.metrics: {m!r} is a built-in "
                               "metric; return it from evaluate() without declaring it")
        if m in FILE_COLUMNS or m in genome_names:
            what = "a setting of the search space" if m in genome_names else "a column the run's files write"
            raise ProblemError(problem.source, "task.entry", f"{problem.task.entry}.metrics: {m!r} is {what}; "
                               "a metric needs a name of its own (its column would stand for both)")
    valid = declared_metrics(problem)
    for section, names in (("objectives", problem.objectives), ("constraints", problem.constraints)):
        for name in names:
            if name not in valid:
                raise ProblemError(problem.source, f"{section}.{name}", f"{problem.task.entry} returns no "
                                   f"metric {name!r}" + did_you_mean(name, valid)
                                   + f"; its metrics: {', '.join(declared) or 'none declared'} (Task.metrics), "
                                   f"built in: {', '.join(OBJECTIVE_NAMES)}")
    declared_stamp = {"version": str(task.version), "metrics": list(declared)}
    sources = None if problem.task.file is None else module_sources(_import_file(problem.task, problem.source))
    # The helpers' code decides the results as much as the task file's, so an edit to one
    # must not reuse stored results: {module name: digest} of each, as imported now.
    helpers = {} if sources is None else source_digests(problem.task.file, sources)
    if helpers:  # absent when there are none: the store keys of tasks without helpers stay
        declared_stamp["helpers"] = dict(sorted(helpers.items()))
    stamp = json.dumps(declared_stamp, sort_keys=True)
    return dataclasses.replace(problem, task=dataclasses.replace(problem.task, declared=stamp),
                               pinned=Pins(task=sources or None, dataset=data))
