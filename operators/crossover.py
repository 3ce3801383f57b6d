"""Crossover: one-point on each layer list (cut-and-splice: each parent cut at its own
point, tails swapped, so children can have depths neither parent had; a layer's per-layer
values travel with it), uniform on hyperparameters.

``crossover(a, b, space, rng) -> (child_a, child_b)``, both repaired into ``space``.
"""

from __future__ import annotations

import numpy as np

from gi_energy.config.genome import Genome
from gi_energy.config.space import SearchSpace


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
    for s, ls in space.layers.items():
        # One cut per parent for the sizes and every per-layer value: layers keep their values.
        la, lb = a.layers.get(s, ()), b.layers.get(s, ())
        i, j = int(rng.integers(len(la) + 1)), int(rng.integers(len(lb) + 1))
        for key in (s, *(t for t, _ in ls.tracks(s))):
            ta, tb = a.layers.get(key, ()), b.layers.get(key, ())
            layers_a[key], layers_b[key] = ta[:i] + tb[j:], tb[:j] + ta[i:]
    values_a, values_b = uniform_values(a.values, b.values, list(space.params), rng)
    # The parents' parts are canonical already: repaired as they are, no genome between.
    return space.repair_parts(layers_a, values_a), space.repair_parts(layers_b, values_b)
