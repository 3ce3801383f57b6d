"""Checking one TOML table at a time: each key taken is type- and range-checked, any key
left over is an error with a did-you-mean, and every message names the file and the key
path (``ProblemError``)."""

from __future__ import annotations

import math

from gi_energy.errors import ProblemError, did_you_mean


class Table:
    """A TOML table being read: every key taken is checked; leftovers are errors."""

    def __init__(self, data, source: str, path: str):
        self.source = source
        self.path = path
        if not isinstance(data, dict):
            raise self.error("", f"expected a table, got {type_name(data)}")
        self.data = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, expected: str) -> ProblemError:
        return ProblemError(self.source, self.key(name) if name else self.path, expected)

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str, default=None):
        self.used.add(name)
        return self.data.get(name, default)

    def get(self, name: str, kind, default=None, *, required=False, low=None, high=None,
            low_open=False, choices=None):
        self.used.add(name)
        if name not in self.data:
            if required:
                raise self.error(name, f"is required ({_kind_name(kind)})")
            return default
        value = self.data[name]
        return check_value(value, kind, lambda msg: self.error(name, msg), low=low, high=high,
                           low_open=low_open, choices=choices)

    def table(self, name: str) -> Table:
        self.used.add(name)
        return Table(self.data.get(name, {}), self.source, self.key(name))

    def finish(self, known=None):
        known = set(known) if known is not None else self.used
        for k in self.data:
            if k not in known:
                raise self.error(k, "unknown key" + did_you_mean(k, known) + known_list(known))


def known_list(known) -> str:
    return f"; valid keys: {', '.join(sorted(known))}" if known else ""


def type_name(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _kind_name(kind) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            "path": "a path string"}.get(kind, str(kind))


def check_value(value, kind, error, *, low=None, high=None, low_open=False, choices=None):
    """Check one scalar; ``error(msg)`` builds the exception to raise."""
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise error(f"expected a number, got {type_name(value)} {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise error(f"expected a finite number, got {value!r}")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise error(f"expected an integer, got {type_name(value)} {value!r}")
    elif kind is bool:
        if not isinstance(value, bool):
            raise error(f"expected true or false, got {type_name(value)} {value!r}")
    elif kind in (str, "path"):
        if not isinstance(value, str) or not value:
            raise error(f"expected a non-empty string, got {type_name(value)} {value!r}")
    if choices is not None and value not in choices:
        raise error(f"expected one of {', '.join(map(repr, choices))}, got {value!r}"
                    + did_you_mean(str(value), map(str, choices)))
    if low is not None and (value <= low if low_open else value < low):
        raise error(f"expected a value {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and value > high:
        raise error(f"expected a value <= {high}, got {value!r}")
    return value
