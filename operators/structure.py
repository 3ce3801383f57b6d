"""Structure mutations: add a layer, remove one, resize one.

Each operator is ``op(genome, space, rng, structure) -> Genome`` acting on one layer
structure (``hidden``, ``conv``) and returns a genome repaired into ``space``. Its
companion ``*_targets(genome, space)`` lists the structures it can change, so the caller
only draws operators that do something.
"""

from __future__ import annotations

import numpy as np

from gi_energy.config.space import Choice, Genome, IntRange, SearchSpace

from .steps import step_size


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


def add_layer(genome: Genome, space: SearchSpace, rng: np.random.Generator, structure: str) -> Genome:
    """Insert layers up to the next allowed count; a new layer copies a neighbour's size
    (a small change to the function), or is sampled when the structure was empty."""
    ls = space.layers[structure]
    layers = list(genome.layers.get(structure, ()))
    target = neighbour_count(ls.count, len(layers), +1)
    if target is None:
        return space.repair(genome)
    while len(layers) < target:
        i = int(rng.integers(len(layers) + 1))
        if layers:
            size = layers[i - 1] if i > 0 else layers[0]
        else:
            size = ls.size.sample(rng)
        layers.insert(i, size)
    return space.repair(genome.replace(layers={structure: tuple(layers)}))


def remove_layer(genome: Genome, space: SearchSpace, rng: np.random.Generator, structure: str) -> Genome:
    """Remove randomly chosen layers down to the next allowed count."""
    ls = space.layers[structure]
    layers = list(genome.layers.get(structure, ()))
    target = neighbour_count(ls.count, len(layers), -1)
    if target is None:
        return space.repair(genome)
    while len(layers) > target:
        layers.pop(int(rng.integers(len(layers))))
    return space.repair(genome.replace(layers={structure: tuple(layers)}))


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
    return space.repair(genome.replace(layers={structure: tuple(layers)}))


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
