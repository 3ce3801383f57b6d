"""The search space: parameter kinds, layer structures, sampling, repair and the grid.

What a genome is (layer structures plus hyperparameter values) and its canonical key are
in :mod:`gi_energy.config.genome`; this module says what a genome may hold. Every
function that draws takes an ``np.random.Generator``; nothing here keeps state.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gi_energy.config.genome import (
    REPAIRED_IN,
    Genome,
    built_genome,
    canonical_sizes,
    canonical_value,
    normalise_float,
)

# A structure is described by two space keys: its layer count and its per-layer size.
STRUCTURES: dict[str, tuple[str, str]] = {
    "hidden": ("hidden_layers", "width"),
    "conv": ("conv_layers", "channels"),
}


def structure_keys(name: str) -> tuple[str, str]:
    """The (layer count, per-layer size) keys of structure ``name``: the built-in ones
    above, ``<name>_layers`` and ``<name>_size`` for a structure of a user's task."""
    return STRUCTURES.get(name, (f"{name}_layers", f"{name}_size"))


def layer_columns(key: str) -> tuple[str, ...]:
    """The readable columns a genome's ``layers`` entry ``key`` is written as (evaluations.csv,
    front.csv): a structure's layer count and its sizes ("hidden" -> hidden_layers, widths),
    a per-layer value's track its values ("blocks.kernel" -> blocks_kernels)."""
    if "." in key:
        structure, value = key.split(".", 1)
        return (f"{structure}_{value}s",)
    count_key, size_key = structure_keys(key)
    return (count_key, size_key + "s")


@dataclass(frozen=True)
class IntRange:
    """Integers in [low, high]; ``log`` steps and samples on a log scale."""

    low: int
    high: int
    log: bool = False
    default: int | None = None

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:
            x = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
            return self.clip(int(math.floor(x)))
        return int(rng.integers(self.low, self.high + 1))

    def clip(self, value) -> int:
        return int(min(max(int(round(value)), self.low), self.high))

    def contains(self, value) -> bool:
        return isinstance(value, int | np.integer) and not isinstance(value, bool) and self.low <= value <= self.high

    def center(self) -> int:
        if self.default is not None:
            return self.default
        if self.log:
            return self.clip(math.sqrt(self.low * self.high))
        return self.clip((self.low + self.high) / 2)

    def describe(self) -> str:
        return f"int [{self.low}, {self.high}]" + (" log" if self.log else "")


@dataclass(frozen=True)
class RealRange:
    """Reals in [low, high]; ``log`` samples uniformly in log space."""

    low: float
    high: float
    log: bool = False
    default: float | None = None

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return self.clip(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return self.clip(rng.uniform(self.low, self.high))

    def clip(self, value) -> float:
        # Normalising can round past a bound given with more than 12 digits; clamp again.
        x = normalise_float(min(max(float(value), self.low), self.high))
        return min(max(x, self.low), self.high)

    def contains(self, value) -> bool:
        return (
            isinstance(value, int | float | np.integer | np.floating)
            and not isinstance(value, bool)
            and self.low <= float(value) <= self.high
        )

    def center(self) -> float:
        if self.default is not None:
            return self.default
        if self.log:
            return self.clip(math.sqrt(self.low * self.high))
        return self.clip((self.low + self.high) / 2)

    def describe(self) -> str:
        return f"real [{self.low:g}, {self.high:g}]" + (" log" if self.log else "")


@dataclass(frozen=True)
class Choice:
    """One of a list of values (strings or numbers)."""

    options: tuple

    def sample(self, rng: np.random.Generator):
        return self.options[int(rng.integers(len(self.options)))]

    def clip(self, value):
        if value in self.options:
            return value
        if all(isinstance(o, int | float) and not isinstance(o, bool) for o in self.options) and isinstance(
            value, int | float
        ):
            return min(self.options, key=lambda o: abs(float(o) - float(value)))
        return self.options[0]

    def contains(self, value) -> bool:
        return value in self.options

    def center(self):
        return self.options[0]

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.options))


@dataclass(frozen=True)
class Fixed:
    """A hyperparameter held at one value (not searched)."""

    value: Any

    def sample(self, rng: np.random.Generator):
        return self.value

    def clip(self, value):
        return self.value

    def contains(self, value) -> bool:
        return value == self.value

    def center(self):
        return self.value

    def describe(self) -> str:
        return f"fixed {self.value!r}"


Param = IntRange | RealRange | Choice | Fixed


@dataclass(frozen=True)
class LayerSpace:
    """A variable-length structure: how many layers, and the size of each.

    ``count`` and ``size`` are IntRange, or Choice of integer levels (a space restricted to
    a grid). ``uniform`` ties every layer to one size, as grid points are built.
    """

    count: IntRange | Choice
    size: IntRange | Choice
    uniform: bool = False
    # Values each layer carries besides its size, as (name, IntRange or Choice) pairs.
    per_layer: tuple[tuple[str, IntRange | Choice], ...] = ()

    def tracks(self, structure: str) -> list[tuple[str, IntRange | Choice]]:
        """(genome layer key, space) of each per-layer value: ``<structure>.<name>``."""
        return [(f"{structure}.{name}", p) for name, p in self.per_layer]

    def sample_track(self, p: IntRange | Choice, n: int, rng: np.random.Generator) -> tuple:
        if self.uniform:
            return (p.sample(rng),) * n
        return tuple(p.sample(rng) for _ in range(n))

    def repair_track(self, p: IntRange | Choice, values, n: int) -> tuple:
        """``values`` clipped into ``p``, cut or padded (the last value, else the centre)
        to ``n`` entries; one value throughout when ``uniform``."""
        out = [p.clip(v) for v in values][:n]
        while len(out) < n:
            out.append(out[-1] if out else p.center())
        if self.uniform and out:
            out = [out[0]] * len(out)
        return tuple(out)

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        n = self.count.sample(rng)
        if self.uniform:
            return (self.size.sample(rng),) * n
        return tuple(self.size.sample(rng) for _ in range(n))

    def repair(self, layers) -> tuple[int, ...]:
        sizes = [self.size.clip(s) for s in layers]
        n = self.count.clip(len(sizes))
        sizes = sizes[:n]
        while len(sizes) < n:
            sizes.append(sizes[-1] if sizes else self.size.center())
        if self.uniform and sizes:
            sizes = [sizes[0]] * len(sizes)
        return tuple(sizes)

    def contains(self, layers) -> bool:
        return (
            self.count.contains(len(layers))
            and all(self.size.contains(s) for s in layers)
            and (not self.uniform or len(set(layers)) <= 1)
        )


@dataclass(frozen=True)
class SearchSpace:
    """What evolution may change: layer structures and hyperparameters."""

    layers: Mapping[str, LayerSpace]
    params: Mapping[str, Param]

    def sample(self, rng: np.random.Generator) -> Genome:
        layers = {}
        for name, ls in self.layers.items():
            layers[name] = ls.sample(rng)
            for track, p in ls.tracks(name):
                layers[track] = ls.sample_track(p, len(layers[name]), rng)
        return Genome(layers=layers, values={name: p.sample(rng) for name, p in self.params.items()})

    def layer_keys(self) -> set[str]:
        """The keys a genome's ``layers`` has in this space: structures and their tracks."""
        return {k for name, ls in self.layers.items() for k in [name, *(t for t, _ in ls.tracks(name))]}

    def repair(self, genome: Genome) -> Genome:
        """Clip every value into the space; missing parts take their default."""
        if genome.__dict__.get(REPAIRED_IN) is self:
            return genome  # repaired into this space already, and repair changes nothing twice
        return self.repair_parts(genome.layers, genome.values)

    def with_value(self, genome: Genome, name: str, value) -> Genome:
        """``repair(genome.replace(values={name: value}))``; when ``genome`` is repaired
        into this space already, only the new value is clipped (a mutation's hot path)."""
        p = self.params.get(name)
        if p is None or genome.__dict__.get(REPAIRED_IN) is not self:
            return self.repair(genome.replace(values={name: value}))
        values = dict(genome.values)
        values[name] = canonical_value(p.clip(canonical_value(value)))
        return built_genome(genome.layers, values, self)

    def with_structure(self, genome: Genome, structure: str, parts: Mapping[str, tuple]) -> Genome:
        """``repair(genome.replace(layers=parts))`` for ``parts`` of one structure (its
        sizes and its tracks); when ``genome`` is repaired into this space already, only
        that structure is repaired again."""
        ls = self.layers.get(structure)
        if ls is None or genome.__dict__.get(REPAIRED_IN) is not self:
            return self.repair(genome.replace(layers=parts))
        new = {k: canonical_sizes(v) for k, v in parts.items()}
        old = genome.layers
        layers = dict(old)
        layers[structure] = sizes = canonical_sizes(ls.repair(new.get(structure, old.get(structure, ()))))
        for track, p in ls.tracks(structure):
            layers[track] = canonical_sizes(ls.repair_track(p, new.get(track, old.get(track, ())), len(sizes)))
        return built_genome(layers, genome.values, self)

    def repair_parts(self, layers: Mapping[str, tuple], values: Mapping[str, Any]) -> Genome:
        """:meth:`repair` of the genome these parts (canonical values, any key order)
        would make, without building that genome first (crossover's children)."""
        out = {}
        for name, ls in self.layers.items():
            out[name] = sizes = ls.repair(layers.get(name, ()))
            for track, p in ls.tracks(name):
                out[track] = ls.repair_track(p, layers.get(track, ()), len(sizes))
        clipped = {
            name: (p.clip(values[name]) if name in values else p.center())
            for name, p in self.params.items()
        }
        # The genome Genome(layers=out, values=clipped) would be, its keys put in order by
        # the space's sorted key lists (its keys are always these; the space is frozen, the
        # lists are kept once made) rather than sorted per genome.
        order = self.__dict__.get("_sorted_keys")
        if order is None:
            order = self.__dict__["_sorted_keys"] = (sorted(self.layer_keys()), sorted(self.params))
        return built_genome({k: canonical_sizes(out[k]) for k in order[0]},
                            {k: canonical_value(clipped[k]) for k in order[1]}, self)

    def contains(self, genome: Genome) -> bool:
        return (
            set(genome.layers) == self.layer_keys()
            and set(genome.values) == set(self.params)
            and all(ls.contains(genome.layers[n]) for n, ls in self.layers.items())
            and all(len(genome.layers[t]) == len(genome.layers[n]) and all(p.contains(v) for v in genome.layers[t])
                    and (not ls.uniform or len(set(genome.layers[t])) <= 1)
                    for n, ls in self.layers.items() for t, p in ls.tracks(n))
            and all(p.contains(genome.values[n]) for n, p in self.params.items())
        )

    def default(self) -> Genome:
        layers = {}
        for n, ls in self.layers.items():
            count = max(ls.count.center(), 0)
            layers[n] = (ls.size.center(),) * count
            layers.update({t: (p.center(),) * count for t, p in ls.tracks(n)})
        return Genome(layers=layers, values={n: p.center() for n, p in self.params.items()})

    def names(self) -> list[str]:
        """Every space key: each structure's count and size keys (and per-layer value
        keys ``<structure>_<value>``), then the hyperparameters."""
        out = []
        for n, ls in self.layers.items():
            out += list(structure_keys(n)) + [f"{n}_{attr}" for attr, _ in ls.per_layer]
        return out + list(self.params)


@dataclass(frozen=True)
class Grid:
    """The exhaustive baseline's levels, keyed by space key (``hidden_layers``, ``width``,
    ``learning_rate``...). Space keys not listed keep the space's default."""

    levels: Mapping[str, tuple]

    def size(self, space: SearchSpace) -> int:
        return sum(1 for _ in self.enumerate(space))

    def enumerate(self, space: SearchSpace) -> Iterator[Genome]:
        """Every point of the Cartesian product, in a stable order, without duplicates.

        A structure is layer count x one size for all its layers (x one value of each
        per-layer value for all its layers).
        """
        base = space.default()
        axes: list[tuple[str, tuple]] = []
        for name in space.layers:
            count_key, size_key = structure_keys(name)
            ls = space.layers[name]
            counts = self.levels.get(count_key, (len(base.layers[name]),))
            sizes = self.levels.get(size_key, (ls.size.center(),))
            tracks = [(t, self.levels.get(f"{name}_{attr}", (p.center(),)))
                      for (t, p), (attr, _) in zip(ls.tracks(name), ls.per_layer)]
            axes.append((name, tuple({name: (s,) * c, **{t: (v,) * c for (t, _), v in zip(tracks, combo)}}
                                     for c in counts for s in sizes
                                     for combo in itertools.product(*(lv for _, lv in tracks)))))
        for name in space.params:
            if name in self.levels:
                axes.append((name, tuple(self.levels[name])))
        seen = set()
        for combo in itertools.product(*(vals for _, vals in axes)):
            layers = dict(base.layers)
            values = dict(base.values)
            for (name, _), v in zip(axes, combo):
                if name in space.layers:
                    layers.update(v)
                else:
                    values[name] = v
            g = Genome(layers=layers, values=values)
            if g.key not in seen:
                seen.add(g.key)
                yield g
