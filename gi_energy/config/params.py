"""Reading one entry of ``[space]``: a range table, a list of choices or a single value."""

from __future__ import annotations

from .checks import Table, check_value
from .problem import HYPERPARAMETERS
from .space import Choice, Fixed, IntRange, RealRange


def read_range(t: Table, name: str, kind, low_bound, high_bound, *, allow_log=True):
    """A space entry given as a table {min, max, log, default}."""
    sub = t.table(name)
    lo = sub.get("min", kind, required=True, low=low_bound, high=high_bound)
    hi = sub.get("max", kind, required=True, low=low_bound, high=high_bound)
    log = sub.get("log", bool, False)
    if lo > hi:
        raise sub.error("min", f"min ({lo}) must be <= max ({hi})")
    if log and not allow_log:
        raise sub.error("log", "log scale is not supported here")
    if log and lo <= 0:
        raise sub.error("min", f"a log-scale range needs min > 0, got {lo}")
    default = sub.get("default", kind, None, low=lo, high=hi)
    sub.finish({"min", "max", "log", "default"})
    return (IntRange if kind is int else RealRange)(lo, hi, log, default)


def read_param(t: Table, name: str):
    kind, lo, hi, choices, _ = HYPERPARAMETERS[name]
    value = t.raw(name)
    err = lambda msg: t.error(name, msg)  # noqa: E731
    pykind = {"int": int, "real": float, "cat": str}[kind]
    if isinstance(value, dict):
        if kind == "cat":
            raise err(f"expected a list of choices from {', '.join(choices)}, got a table")
        return read_range(t, name, pykind, lo, hi)
    if isinstance(value, list):
        if not value:
            raise err("expected a non-empty list of choices")
        opts = tuple(check_value(v, pykind, err, low=lo, high=hi, choices=choices) for v in value)
        if len(set(opts)) != len(opts):
            raise err(f"expected distinct choices, got {value!r}")
        return Choice(opts)
    return Fixed(check_value(value, pykind, err, low=lo, high=hi, choices=choices))
