"""Crossover: one-point on each layer list, uniform on hyperparameters.

``crossover(a, b, space, rng) -> (child_a, child_b)``, both repaired into ``space``.
"""

from __future__ import annotations

import numpy as np

from gi_energy.config.space import Genome, SearchSpace


def one_point_layers(a: tuple[int, ...], b: tuple[int, ...],
                     rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Cut each parent at its own point and swap tails (cut-and-splice), so children can
    have depths neither parent had; repair brings the count back into range."""
    i = int(rng.integers(len(a) + 1))
    j = int(rng.integers(len(b) + 1))
    return a[:i] + b[j:], b[:j] + a[i:]


def uniform_values(a: dict, b: dict, names, rng: np.random.Generator) -> tuple[dict, dict]:
    """Swap each named value between the two parents with probability 1/2."""
    va, vb = dict(a), dict(b)
    for name in names:
        if rng.random() < 0.5 and name in va and name in vb:
            va[name], vb[name] = vb[name], va[name]
    return va, vb


def crossover(a: Genome, b: Genome, space: SearchSpace,
              rng: np.random.Generator) -> tuple[Genome, Genome]:
    layers_a, layers_b = {}, {}
    for s in space.layers:
        layers_a[s], layers_b[s] = one_point_layers(a.layers.get(s, ()), b.layers.get(s, ()), rng)
    values_a, values_b = uniform_values(a.values, b.values, list(space.params), rng)
    return (space.repair(Genome(layers=layers_a, values=values_a)),
            space.repair(Genome(layers=layers_b, values=values_b)))
