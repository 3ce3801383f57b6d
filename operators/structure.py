"""Structure mutations: add a layer, remove one, resize one.

Each operator is ``op(genome, space, rng, structure) -> Genome`` acting on one layer
structure (``hidden``, ``conv``) and returns a genome repaired into ``space``. Its
companion ``*_targets(genome, space)`` lists the structures it can change, so the caller
only draws operators that do something.
"""

from __future__ import annotations

import numpy as np

from gi_energy.config.genome import Genome
from gi_energy.config.space import Choice, IntRange, SearchSpace

from .steps import mutable, resample_choice, step_size


def neighbour_count(count: IntRange | Choice, n: int, direction: int) -> int | None:
    """The next allowed layer count above (+1) or below (-1) ``n``; None at the edge."""
    if isinstance(count, Choice):
        levels = sorted(count.options)
        candidates = [c for c in levels if (c > n if direction > 0 else c < n)]
        if not candidates:
            return None
        return candidates[0] if direction > 0 else candidates[-1]
    m = n + direction
    return m if count.low <= m <= count.high else None


def _rows(genome: Genome, space: SearchSpace, structure: str) -> tuple[list[str], list[list]]:
    """The structure's layers as rows (size, then each per-layer value) and the genome keys
    of those columns: an operator moves whole rows, so a layer keeps its values. (The
    genome is repaired first, which aligns every track with the sizes.)"""
    keys = [structure, *(t for t, _ in space.layers[structure].tracks(structure))]
    g = space.repair(genome)
    return keys, [list(row) for row in zip(*(g.layers[k] for k in keys))]


def _from_rows(genome: Genome, space: SearchSpace, keys: list[str], rows: list[list]) -> Genome:
    return space.with_structure(genome, keys[0], {k: tuple(r[j] for r in rows) for j, k in enumerate(keys)})


def add_layer(genome: Genome, space: SearchSpace, rng: np.random.Generator, structure: str) -> Genome:
    """Insert layers up to the next allowed count; a new layer copies a neighbour's size and
    per-layer values (a small change to the function), or is sampled when the structure
    was empty."""
    ls = space.layers[structure]
    keys, rows = _rows(genome, space, structure)
    target = neighbour_count(ls.count, len(rows), +1)
    if target is None:
        return space.repair(genome)
    while len(rows) < target:
        i = int(rng.integers(len(rows) + 1))
        if rows:
            row = list(rows[i - 1] if i > 0 else rows[0])
        else:
            row = [ls.size.sample(rng), *(p.sample(rng) for _, p in ls.tracks(structure))]
        rows.insert(i, row)
    return _from_rows(genome, space, keys, rows)


def remove_layer(genome: Genome, space: SearchSpace, rng: np.random.Generator, structure: str) -> Genome:
    """Remove randomly chosen layers (with their per-layer values) down to the next
    allowed count."""
    ls = space.layers[structure]
    keys, rows = _rows(genome, space, structure)
    target = neighbour_count(ls.count, len(rows), -1)
    if target is None:
        return space.repair(genome)
    while len(rows) > target:
        rows.pop(int(rng.integers(len(rows))))
    return _from_rows(genome, space, keys, rows)


def revalue_layer(genome: Genome, space: SearchSpace, rng: np.random.Generator, target: str) -> Genome:
    """Step one per-layer value of one layer (``target`` = "<structure>.<value>"): a
    neighbouring integer, or another choice; every layer at once when ``uniform``."""
    structure = target.split(".", 1)[0]
    ls = space.layers[structure]
    param = dict(ls.tracks(structure))[target]
    values = list(genome.layers.get(target, ()))
    if not values:
        return space.repair(genome)
    i = int(rng.integers(len(values)))
    new = step_size(values[i], param, rng) if not isinstance(param, Choice) or _numeric(param) else \
        resample_choice(values[i], param, rng)
    values = [new] * len(values) if ls.uniform else values[:i] + [new] + values[i + 1:]
    return space.with_structure(genome, structure, {target: tuple(values)})


def revalue_layer_targets(genome: Genome, space: SearchSpace) -> list[str]:
    return [t for s, ls in space.layers.items() if genome.layers.get(s)
            for t, p in ls.tracks(s) if mutable(p)]


def _numeric(choice: Choice) -> bool:
    return all(isinstance(o, int) and not isinstance(o, bool) for o in choice.options)


def resize_layer(genome: Genome, space: SearchSpace, rng: np.random.Generator, structure: str) -> Genome:
    """Step one layer's size (log scale, or to a neighbouring level); with ``uniform``
    sizes every layer moves together, as the space ties them."""
    ls = space.layers[structure]
    layers = list(genome.layers.get(structure, ()))
    if not layers:
        return space.repair(genome)
    i = int(rng.integers(len(layers)))
    new = step_size(layers[i], ls.size, rng)
    if ls.uniform:
        layers = [new] * len(layers)
    else:
        layers[i] = new
    return space.with_structure(genome, structure, {structure: tuple(layers)})


def add_layer_targets(genome: Genome, space: SearchSpace) -> list[str]:
    return [s for s, ls in space.layers.items()
            if neighbour_count(ls.count, len(genome.layers.get(s, ())), +1) is not None]


def remove_layer_targets(genome: Genome, space: SearchSpace) -> list[str]:
    return [s for s, ls in space.layers.items()
            if neighbour_count(ls.count, len(genome.layers.get(s, ())), -1) is not None]


def resize_layer_targets(genome: Genome, space: SearchSpace) -> list[str]:
    out = []
    for s, ls in space.layers.items():
        single = (len(ls.size.options) == 1) if isinstance(ls.size, Choice) else ls.size.low == ls.size.high
        if genome.layers.get(s) and not single:
            out.append(s)
    return out
