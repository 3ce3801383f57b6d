"""Genomes: one candidate's layer structures and hyperparameter values, their canonical
values (one spelling per float, plain ints) and the canonical key that names a candidate
across processes, runs and stores.

A genome has two parts:

* ``layers``: variable-length structures, each a tuple of per-layer sizes. ``hidden`` is
  the dense hidden layers (widths) of every model family; ``conv`` is the convolution
  blocks (channels) of the ``cnn`` family. A structure of a user's task may give each
  layer further values (a kind, a kernel size): each is a *track* ``<structure>.<value>``
  in ``layers``, a tuple with one entry per layer, kept aligned with the sizes.
* ``values``: one value per hyperparameter (learning rate, batch size, ...).

What a genome may hold is the search space's to say (:mod:`gi_energy.config.space`).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def normalise_float(x: float) -> float:
    """Round to 12 significant digits so that arithmetic noise gives one key."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(f"{x:.12g}")


def canonical_value(value):
    kind = type(value)
    if kind is str or kind is int or kind is bool:  # the common cases first: a genome is built per child
        return value
    if kind is float:
        return _canonical_float(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _canonical_float(float(value))
    return value


def canonical_sizes(sizes) -> tuple:
    """A layer tuple with canonical entries (the tuple itself when it already is one: plain
    ints, as every operator and repair builds them)."""
    if type(sizes) is tuple:
        for s in sizes:
            if type(s) is not int:
                break
        else:
            return sizes
    return tuple(canonical_value(s) for s in sizes)


@functools.lru_cache(maxsize=4096)
def _canonical_float(x: float):
    """A float's canonical value (memoised: a search meets the same few levels again and
    again, and the 12-digit round trip through a string is the costly part)."""
    f = normalise_float(x)
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


def _key_of(layers: Mapping[str, tuple], values: Mapping[str, Any]) -> str:
    parts = [f"{k}={'-'.join(map(str, v)) or '0'}" for k, v in layers.items()]
    memo = _VALUE_PARTS
    for k, v in values.items():
        # A search spells the same few (name, value) parts thousands of times. The memo is
        # keyed by the value's type too: 1, 1.0 and True are equal keys of a dict but spell
        # differently, and a key must not depend on which one a process met first.
        part = memo.get((k, type(v), v))
        if part is None:
            if len(memo) >= _VALUE_PARTS_MAX:
                memo.clear()  # a continuous space meets new values forever: stay bounded
            part = memo[(k, type(v), v)] = f"{k}={_spelled(v)}"
        parts.append(part)
    return "|".join(parts)


def _spelled(v) -> str:
    """A value as a key spells it: a float by repr, a text as it is unless it holds a
    character that would let two genomes share a key ("|" and "=" part the key; a quote or
    backslash would let a plain text pass for a quoted one), which is quoted by repr."""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str) and _KEY_SPECIAL.search(v):
        return repr(v)
    return str(v)


_KEY_SPECIAL = re.compile(r"[|='\"\\]")


# (name, type, value) -> "name=value", the key's parts of hyperparameter values met so far
# (a memo of a pure function; bounded, so it never holds more than this many).
_VALUE_PARTS: dict[tuple, str] = {}
_VALUE_PARTS_MAX = 65536


# json.dumps(x, sort_keys=True, separators=(",", ":")) with one encoder made once (dumps
# makes a new one per call when an argument is not the default).
_COMPACT_SORTED = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


@dataclass(frozen=True)
class Genome:
    """One candidate: layer structures plus hyperparameter values. Hashable, picklable."""

    layers: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        layers, values = self.layers, self.values
        object.__setattr__(self, "layers", {k: canonical_sizes(layers[k]) for k in sorted(layers)})
        object.__setattr__(self, "values", {k: canonical_value(values[k]) for k in sorted(values)})

    def __hash__(self):
        return hash(self.key)

    def __eq__(self, other):
        return isinstance(other, Genome) and self.key == other.key

    @functools.cached_property
    def key(self) -> str:
        """Canonical key: stable across processes, runs and float spellings."""
        # Built on first use, then an attribute: the search asks for it tens of times per
        # genome (dedup, store, fitness), and never for the genomes an operator builds on
        # its way to a child.
        return _key_of(self.layers, self.values)

    def to_dict(self) -> dict:
        return {"layers": {k: list(v) for k, v in self.layers.items()}, "values": dict(self.values)}

    @classmethod
    def from_dict(cls, data: Mapping) -> Genome:
        return cls(layers={k: tuple(v) for k, v in data["layers"].items()}, values=dict(data["values"]))

    def to_json(self) -> str:
        # Kept once built, as the key is: every rewrite of evaluations.csv asks again.
        text = self.__dict__.get("_json")
        if text is None:
            text = _COMPACT_SORTED(self.to_dict())
            object.__setattr__(self, "_json", text)
        return text

    @classmethod
    def from_json(cls, text: str) -> Genome:
        """The genome ``text`` holds. Text spelled as :meth:`to_json` spells it (compact,
        sorted, nothing escaped, every value already canonical) is kept as its JSON, so a
        genome read back (a replay's table) is not encoded again when it is written out."""
        data = json.loads(text)
        genome = cls.from_dict(data)
        if _spelled_as_kept(text, data, genome):
            object.__setattr__(genome, "_json", text)
        return genome

    def replace(self, layers: Mapping | None = None, values: Mapping | None = None) -> Genome:
        """This genome with some layer tuples and values replaced (or added)."""
        # Only the new parts are made canonical: this genome's own already are.
        new_layers, new_values = dict(self.layers), dict(self.values)
        if layers:
            new_layers.update({k: canonical_sizes(v) for k, v in layers.items()})
            if not all(k in self.layers for k in layers):
                new_layers = {k: new_layers[k] for k in sorted(new_layers)}
        if values:
            new_values.update({k: canonical_value(v) for k, v in values.items()})
            if not all(k in self.values for k in values):
                new_values = {k: new_values[k] for k in sorted(new_values)}
        return built_genome(new_layers, new_values)

    def __repr__(self) -> str:
        return f"Genome({self.key})"

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != REPAIRED_IN}


def _spelled_as_kept(text: str, data, genome: Genome) -> bool:
    """Is ``text`` (parsed: ``data``) what ``genome.to_json()`` writes? Checked cheaply and
    strictly: anything it cannot vouch for (a space, a character json escapes: beyond
    ASCII or DEL, any escape at all, a float canonical_value changes, an int spelled as a
    float, keys out of order) is encoded afresh when asked."""
    if " " in text or not text.isascii() or "\x7f" in text or "\\" in text:
        return False
    if list(data) != ["layers", "values"]:
        return False
    layers, values = data["layers"], data["values"]
    if not isinstance(layers, dict) or not isinstance(values, dict):
        return False
    if list(layers) != list(genome.layers) or list(values) != list(genome.values):
        return False
    if not all(type(s) is int for sizes in layers.values() for s in sizes):
        return False
    return all(type(a) is type(b) and a == b for a, b in zip(values.values(), genome.values.values()))


def built_genome(layers: dict, values: dict, repaired_in=None) -> Genome:
    """The Genome of parts already canonical and in sorted key order, without
    ``__post_init__`` making them so again (the operators' and repair's hot path).
    ``repaired_in``: the search space these parts were just repaired into, remembered so
    that repairing the genome into it again is free (see ``SearchSpace.repair``)."""
    g = object.__new__(Genome)
    d = g.__dict__  # frozen: the fields are set as __post_init__ would, past __setattr__
    d["layers"] = layers
    d["values"] = values
    if repaired_in is not None:
        d[REPAIRED_IN] = repaired_in
    return g


# The __dict__ entry naming the space a genome was repaired into (never pickled: it is a
# shortcut of one process, and a genome's pickle must not carry a whole space along).
REPAIRED_IN = "_repaired_in"
